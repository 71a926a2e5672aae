"""Helpers shared by the tests: the repository's location and throwaway project copies."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
INFERENCE_PATH = REPO / "inference" / "inference.py"
#: The wire format package inference.py imports; it ships beside it in ``code/``.
WIRE_PATH = REPO / "inference" / "skdeploy_wire"
#: The wire package's members in the artifact, in the archive's order.
WIRE_MEMBERS = tuple(f"code/{WIRE_PATH.name}/{p.name}" for p in sorted(WIRE_PATH.glob("*.py")))
STACKS = sorted(
    p.name[len("Pulumi.") : -len(".yaml")] for p in (REPO / "stacks").glob("Pulumi.*.yaml")
)


def copy_project(dest: Path) -> Path:
    """A copy of the project's program, model, handlers and stacks, to change without harm."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("Pulumi.yaml", "__main__.py"):
        shutil.copy2(REPO / name, dest / name)
    for folder in ("model", "inference", "stacks"):
        shutil.copytree(REPO / folder, dest / folder, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def load_wire() -> ModuleType:
    """skdeploy_wire, imported once from its folder under its own name, as inference.py finds it.

    The container puts ``code/`` on ``sys.path``; here the module is registered in
    ``sys.modules`` instead, so ``import skdeploy_wire`` finds it without the whole handler
    folder on the path (where ``inference`` would shadow the folder of that name). Every
    handler module the tests load shares it, as the handlers of one worker do.
    """
    name = WIRE_PATH.name
    init = WIRE_PATH / "__init__.py"
    module = sys.modules.get(name)
    if module is not None and getattr(module, "__file__", None) == str(init):
        return module
    spec = importlib.util.spec_from_file_location(
        name, init, submodule_search_locations=[str(WIRE_PATH)]
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def modules_binding(wire: ModuleType, name: str) -> list[ModuleType]:
    """The wire package and each of its modules that binds ``name`` (a limit read there).

    Each module of the package imports the limits it reads by name, so a limit changed on the
    package alone would change nothing: a test sets it everywhere it is bound.
    """
    modules = [wire, *(m for m in vars(wire).values() if isinstance(m, ModuleType))]
    bound = [m for m in modules if name in vars(m)]
    assert len(bound) > 1, f"{name} is bound nowhere but the package"
    return bound


def set_in_wire(monkeypatch: pytest.MonkeyPatch, name: str, value: Any) -> None:
    """Set one of the wire's limits in the package and in each of its modules that binds it."""
    for module in modules_binding(load_wire(), name):
        monkeypatch.setattr(module, name, value)


@contextlib.contextmanager
def wire_limits(**values: Any) -> Iterator[None]:
    """The wire's limits set to ``values`` for a block, everywhere they are bound."""
    wire = load_wire()
    saved = [(m, n, vars(m)[n]) for n in values for m in modules_binding(wire, n)]
    for module, name, _ in saved:
        setattr(module, name, values[name])
    try:
        yield
    finally:
        for module, name, old in saved:
            setattr(module, name, old)


def load_inference(name: str = "inference") -> ModuleType:
    """Import inference.py from its path, as the container does (it is not a package)."""
    load_wire()
    spec = importlib.util.spec_from_file_location(name, INFERENCE_PATH)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


#: The line of inference.py's predict_fn a user changes to post-process predictions.
PREDICT_FN_RETURN = "    return wire.predict(data, model)\n"


def shift_predictions(handlers: Path, amount: float) -> None:
    """Edit ``handlers/inference.py`` as a user would: predict_fn adds ``amount`` to each answer."""
    path = handlers / "inference.py"
    source = path.read_text()
    assert source.count(PREDICT_FN_RETURN) == 1
    path.write_text(
        source.replace(
            PREDICT_FN_RETURN,
            "    result = wire.predict(data, model)\n"
            "    if isinstance(result, wire.Prediction):\n"
            f"        result.predictions = result.predictions + {amount!r}\n"
            "    return result\n",
        )
    )


@dataclass
class Answer:
    """What a client receives from the handlers: status, response type and body."""

    status: int
    mimetype: str
    body: bytes

    def error(self) -> str:
        """The message of a JSON error body (``{"error": ...}`` and nothing else)."""
        assert self.mimetype == "application/json", self.body
        document = json.loads(self.body)
        assert list(document) == ["error"]
        return str(document["error"])

    def predictions(self) -> list[Any]:
        """The predictions of a 200 JSON answer."""
        assert self.status == 200, self.body
        return list(json.loads(self.body)["predictions"])

    def document(self) -> dict[str, Any]:
        """The whole JSON document of a 200 answer."""
        assert (self.status, self.mimetype) == (200, "application/json"), self.body
        result: dict[str, Any] = json.loads(self.body)
        return result

    def lines(self) -> list[dict[str, Any]]:
        """The records of a 200 JSON Lines answer."""
        assert self.status == 200, self.body
        return [json.loads(line) for line in self.body.decode().split("\n")]


def call_handlers(
    inference: ModuleType,
    model: Any,
    body: str | bytes,
    content_type: str | None,
    accept: str | None = "application/json",
) -> Answer:
    """Run ``inference``'s three request handlers in the container's order."""
    response = inference.output_fn(
        inference.predict_fn(inference.input_fn(body, content_type), model), accept
    )
    return Answer(response.status_code, response.mimetype, response.get_data())


def container_env(work: Path, **extra: str) -> dict[str, str]:
    """A minimal environment for sagemaker-containers in a runtime, rooted in ``work``."""
    return {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(work),
        "SAGEMAKER_BASE_DIR": str(work / "opt_ml"),
        "SAGEMAKER_CONTAINER_LOG_LEVEL": "20",
        "PYTHONDONTWRITEBYTECODE": "1",  # keep __pycache__ out of inference/ (the artifact)
        **extra,
    }
