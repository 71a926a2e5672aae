# Two commands matter on a fresh machine: `make demo` (the main job, locally) and `make test`.
# Both need only Python >= 3.10: uv is bootstrapped into build/uv if it is not on PATH, and the
# tool environment is created as .venv at the repository root from uv.lock.

SHELL := /bin/bash
.DEFAULT_GOAL := help
PYTHON ?= python3
UV := $(shell command -v uv 2>/dev/null || echo build/uv/bin/uv)
RUN := $(UV) run --frozen
STACK ?= dev

.PHONY: help venv test lint typecheck unit demo model bench fuzz clean

help:
	@echo "make demo    build, check, serve locally, smoke test and plan the $(STACK) stack"
	@echo "make test    lint (ruff, import layers), typecheck and the whole test suite (what CI runs)"
	@echo "make model   retrain model/model.joblib in the container-faithful runtime"
	@echo "make bench   print the benchmark figures"
	@echo "make fuzz    the pickle inspector's differential fuzz, 20,000 cases (FUZZ_CASES=N)"

build/uv/bin/uv:
	@echo "uv not found on PATH: installing it into build/uv"
	$(PYTHON) -m venv build/uv
	build/uv/bin/pip install --quiet uv

.venv/.synced: uv.lock pyproject.toml | $(UV)
	$(UV) sync --frozen --quiet
	@touch $@

venv: .venv/.synced

lint: venv
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	$(RUN) lint-imports

typecheck: venv
	$(RUN) mypy

unit: venv
	$(RUN) pytest

test: lint typecheck unit

model: venv
	@py="$$($(RUN) skdeploy runtime --framework 1.2-1)" && "$$py" model/train.py

demo: venv
	$(RUN) python -m skdeploy demo --stack $(STACK)

bench: venv
	$(RUN) python bench/run.py

fuzz: venv
	FUZZ_CASES=$${FUZZ_CASES:-20000} $(RUN) pytest -q -s tests/test_pickle_fuzz.py

clean:
	rm -rf build .venv .pytest_cache .mypy_cache .ruff_cache
