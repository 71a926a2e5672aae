"""Session fixtures: the container-faithful runtime, and the stack served by ``skdeploy serve``.

``runtime_python`` builds (or reuses) the 1.2-1 runtime virtualenv under the repository's
``build/``; tests that run code under the container's Python use it. ``local_endpoint`` runs the
real command, ``python -m skdeploy serve --port 0``, against a throwaway copy of the project with
its own stack file, waits for its ``--ready-file``, and always stops it. Copies share the
repository's runtime virtualenv through a ``build/runtime`` symlink, so it is built once.
"""

from __future__ import annotations

import dataclasses
import os
import pickle
import shutil
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import dill
import hypothesis  # noqa: F401 - imported now, not in the summary after a failure (see below)
import pytest
import yaml

from skdeploy.core.constants import BUILD_DIR
from skdeploy.core.frameworks import DEFAULT_FRAMEWORK_VERSION, get_framework
from skdeploy.tooling.demo import EndpointFailed, RunningEndpoint, background_endpoint
from skdeploy.tooling.demo import serve_command as demo_serve_command
from skdeploy.tooling.runtime import RuntimeUnavailable, ensure_runtime, runtime_dir
from tests.support import REPO, copy_project

# hypothesis' pytest plugin imports hypothesis lazily while printing the summary; after a failing
# test with a deep Pulumi (asyncio) traceback, CPython 3.11.7 then fails in ast.parse with
# "AST constructor recursion depth mismatch" and hides the failures. Importing it first avoids it.

# pulumi.dynamic (the autoscaling guard) imports dill, and importing dill registers its types into
# the pure-Python pickler that joblib.dump uses: a model dumped in this process afterwards would
# refer to dill._dill, which the inspector rightly refuses. Tests dump models as users do, from a
# plain interpreter: undo the registration (Pulumi serialises its providers with dill.dumps, which
# does not need it).
dill.extend(False)

# pulumi.dynamic.serialize_provider (run whenever the program declares the autoscaling guard)
# replaces pickle._Pickler's dict methods with key-sorting ones and never restores them; joblib
# pickles with pickle._Pickler, so every later joblib.dump in the process would sort dict keys.
_STOCK_PICKLER = {name: getattr(pickle._Pickler, name) for name in ("_batch_setitems", "save_dict")}


@pytest.fixture(autouse=True)
def _stock_pickler() -> None:
    """Each test pickles with the standard library's own pure-Python pickler."""
    for name, method in _STOCK_PICKLER.items():
        setattr(pickle._Pickler, name, method)


#: The stack written into project copies: values the local-endpoint tests can rely on.
TEST_STACK = "dev"
TEST_REGION = "us-east-1"
TEST_ENDPOINT_NAME = "skdeploy-local-test"
#: Seconds a ``serve`` gets to become healthy (the runtime is already built by then).
READY_TIMEOUT = 120.0


@dataclass(frozen=True)
class LocalEndpoint(RunningEndpoint):
    """A running ``skdeploy serve`` (:class:`skdeploy.tooling.demo.RunningEndpoint`), for tests."""

    def client(self) -> Any:
        """An unchanged boto3 ``sagemaker-runtime`` client pointed at this endpoint."""
        import boto3

        return boto3.client(
            "sagemaker-runtime",
            region_name=self.region,
            endpoint_url=self.url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )


def make_project(
    dest: Path, *, config: Mapping[str, object] | None = None, stack: str = TEST_STACK
) -> Path:
    """A copy of the project whose ``stack`` file holds ``config`` (test defaults otherwise).

    ``build/runtime`` links to the repository's, so the runtime virtualenv is shared.
    """
    project = copy_project(dest)
    values: dict[str, object] = {
        "aws:region": TEST_REGION,
        "skdeploy:endpointName": TEST_ENDPOINT_NAME,
    }
    values.update(config or {})
    (project / "stacks" / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump({"config": values}))
    shared = REPO / BUILD_DIR / "runtime"
    shared.mkdir(parents=True, exist_ok=True)
    (project / BUILD_DIR).mkdir(exist_ok=True)
    (project / BUILD_DIR / "runtime").symlink_to(shared, target_is_directory=True)
    return project


def make_variant_project(dest: Path, **challenger: object) -> Path:
    """A project whose test stack runs two variants and a shadow.

    ``champion`` (weight 9) is the project's model; ``challenger`` (weight 1) takes the keys
    given here; the shadow ``quiet`` runs ``model2``, a copy of ``model/``.
    """
    project = make_project(
        dest,
        config={
            "skdeploy:variants": [
                {"name": "champion", "weight": 9},
                {"name": "challenger", "weight": 1, **challenger},
            ],
            "skdeploy:shadow": {"name": "quiet", "modelDir": "model2"},
        },
    )
    shutil.copytree(project / "model", project / "model2")
    return project


def serve_command(project: Path, *extra: str, stack: str = TEST_STACK) -> list[str]:
    """``python -m skdeploy serve`` for a project copy, on a free port."""
    return demo_serve_command(project, stack, *extra)


@contextmanager
def running_serve(project: Path, logs: Path, *extra: str) -> Iterator[LocalEndpoint]:
    """Start ``skdeploy serve`` on a project copy, wait until healthy, yield it, always stop it."""
    try:
        with background_endpoint(project, TEST_STACK, logs, *extra, timeout=READY_TIMEOUT) as ep:
            yield LocalEndpoint(**{f.name: getattr(ep, f.name) for f in fields(ep)})
    except EndpointFailed as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="session")
def runtime_python() -> Path:
    """The 1.2-1 runtime virtualenv's interpreter (built on first use under ``build/``)."""
    framework = get_framework(DEFAULT_FRAMEWORK_VERSION)
    try:
        return ensure_runtime(framework, REPO / BUILD_DIR)
    except RuntimeUnavailable as exc:
        where = runtime_dir(framework, REPO / BUILD_DIR)
        if os.environ.get("CI"):  # CI must prove the runtime, not skip it
            pytest.fail(f"no runtime at {where}: {exc}")
        pytest.skip(f"no runtime at {where}: {exc}")


@pytest.fixture(scope="session")
def local_endpoint(
    runtime_python: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalEndpoint]:
    """The project's model served by ``skdeploy serve --stack dev --port 0``, for the session."""
    if sys.platform == "win32":
        pytest.skip("skdeploy serve needs Linux or macOS (gunicorn)")
    work = tmp_path_factory.mktemp("local-endpoint")
    project = make_project(work / "project")
    with running_serve(project, work / "logs") as endpoint:
        yield endpoint


@pytest.fixture
def deploy_only_framework(monkeypatch: pytest.MonkeyPatch) -> str:
    """Framework 1.0-1 marked deploy-only ("a made-up reason"), as a framework without a local
    runtime would be: every listed framework runs locally today. Returns its version."""
    from skdeploy.core.frameworks import FRAMEWORKS

    entry = dataclasses.replace(
        FRAMEWORKS["1.0-1"], local_runtime=False, refusal="a made-up reason"
    )
    monkeypatch.setitem(FRAMEWORKS, "1.0-1", entry)
    return "1.0-1"
