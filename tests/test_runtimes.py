"""Every framework version with a local runtime builds, holds the table's pins, and serves.

For each framework in :data:`skdeploy.core.frameworks.FRAMEWORKS` whose ``local_runtime`` is true,
the runtime virtualenv is built (or reused) under the repository's ``build/``, its interpreter is
asked which versions it has installed, and a model trained by ``model/train.py`` in that very
runtime goes through the command line as a user's would: ``skdeploy check`` (which serves it and
predicts ``samples.json``), ``skdeploy serve`` and ``skdeploy smoke`` against it.

A runtime whose serving stack does not import is the runtime's fault, and is reported as such:
built in a throwaway build folder, it is broken once before its probe (never stamped as
current) and once after (a module file replaced), and ``check`` and ``serve`` must say which
framework's runtime is broken and must not blame the model.

The README's framework table is written from the same table, so it cannot claim a local run
that is not tested here.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from skdeploy.core.constants import BUILD_DIR
from skdeploy.core.frameworks import (
    DEFAULT_FRAMEWORK_VERSION,
    FRAMEWORKS,
    Framework,
    SourcePatch,
    get_framework,
)
from skdeploy.tooling import cli
from skdeploy.tooling.runtime import (
    PROBE_MODULES,
    RuntimeBroken,
    RuntimeUnavailable,
    apply_patch,
    ensure_runtime,
    is_current,
    runtime_dir,
)
from tests.conftest import TEST_STACK, make_project, running_serve
from tests.support import REPO, copy_project

pytestmark = [
    pytest.mark.runtime,
    pytest.mark.skipif(sys.platform == "win32", reason="skdeploy serve needs Linux or macOS"),
]

LOCAL = sorted(v for v, f in FRAMEWORKS.items() if f.local_runtime)

#: Asks the runtime's interpreter for its Python version and installed distributions (the
#: runtime may be Python 3.8: plain syntax only).
_INSTALLED = """\
import importlib.metadata, json, sys
found = {}
for name in sys.argv[1:]:
    try:
        found[name] = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        found[name] = None
print(json.dumps({"python": "%d.%d" % sys.version_info[:2], "versions": found}))
"""

#: A module no runtime has: importing it is how a runtime is broken on purpose here.
MISSING = "skdeploy_fabricated_missing_module"


def built(framework: Framework, build_dir: Path = REPO / BUILD_DIR) -> Path:
    """The framework's runtime interpreter, built on first use.

    A machine without the container's Python skips (CI fails instead: it must prove every local
    runtime); a runtime that builds but does not import always fails.
    """
    try:
        return ensure_runtime(framework, build_dir)
    except RuntimeBroken:
        raise
    except RuntimeUnavailable as exc:
        if os.environ.get("CI"):
            pytest.fail(f"framework {framework.version}: {exc}")
        pytest.skip(f"framework {framework.version}: {exc}")


def installed(python: Path, names: list[str]) -> tuple[str, dict[str, str | None]]:
    """The runtime's ``major.minor`` and the installed version of each distribution."""
    result = subprocess.run(
        [str(python), "-I", "-c", _INSTALLED, *names],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    answer = json.loads(result.stdout)
    return answer["python"], answer["versions"]


def requirement_name(requirement: str) -> str:
    """The distribution name of a pip requirement such as ``scipy>=1.9.0``."""
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
    assert match, requirement
    return match.group(0)


def module_file(python: Path, module: str) -> Path:
    """Where ``module`` lives in the runtime (found without importing it)."""
    origin = subprocess.run(
        [
            str(python),
            "-I",
            "-c",
            "import importlib.util, sys; print(importlib.util.find_spec(sys.argv[1]).origin)",
            module,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout.strip()
    return Path(origin)


def test_the_default_framework_has_a_local_runtime() -> None:
    """The framework every new stack gets can be run locally (the daily loop needs it)."""
    assert DEFAULT_FRAMEWORK_VERSION in LOCAL


@pytest.mark.parametrize("version", LOCAL)
def test_the_runtime_has_exactly_the_tables_pins(version: str) -> None:
    """The runtime's Python is the container's, and every pin installed is the one listed."""
    from packaging.requirements import Requirement

    framework = get_framework(version)
    python = built(framework)
    requirements = [Requirement(r) for r in framework.runtime_requirements()]
    minor, versions = installed(python, [requirement_name(str(r)) for r in requirements])
    assert minor == framework.python
    for requirement in requirements:
        got = versions[requirement_name(str(requirement))]
        assert got is not None, f"{requirement} is not installed in the {version} runtime"
        assert requirement.specifier.contains(got, prereleases=True), (
            f"{version} runtime has {requirement.name} {got}, the table says {requirement}"
        )
    table = {
        "scikit-learn": framework.scikit_learn,
        "numpy": framework.numpy,
        "pandas": framework.pandas,
    }
    for name, pinned in table.items():
        assert versions[name] == pinned, f"{version}: {name} {versions[name]} != {pinned}"


@pytest.mark.parametrize("version", LOCAL)
def test_the_images_edits_are_made_in_the_runtime(version: str) -> None:
    """Each edit the image's Dockerfile makes to an installed module is made in the runtime."""
    framework = get_framework(version)
    python = built(framework)
    for patch in framework.source_patches:
        text = module_file(python, patch.module).read_text(encoding="utf-8")
        assert patch.new in text
        assert patch.old not in text.replace(patch.new, "")


@pytest.mark.parametrize("version", LOCAL)
def test_a_model_trained_in_the_runtime_is_checked_served_and_smoked(
    version: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """check → serve → smoke through the command line, for a model that runtime trained."""
    framework = get_framework(version)
    python = built(framework)
    project = make_project(
        tmp_path / "project", config={"skdeploy:frameworkVersion": framework.version}
    )
    model_dir = project / "model"
    (model_dir / "model.joblib").unlink()
    (model_dir / "samples.json").unlink()
    subprocess.run(
        [str(python), str(model_dir / "train.py"), str(model_dir)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    trained_with = json.loads((model_dir / "samples.json").read_text())["trained_with"]
    assert trained_with == {"scikit-learn": framework.scikit_learn, "numpy": framework.numpy}

    where = ["--stack", TEST_STACK, "--project-dir", str(project)]
    code = cli.main(["check", *where, "--json"])
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert code == cli.EXIT_OK, captured.out + captured.err
    assert report["checks"][-1] == "load-and-predict"
    assert report["findings"] == []

    with running_serve(project, tmp_path / "logs") as endpoint:
        code = cli.main(["smoke", *where, "--endpoint-url", endpoint.url])
        captured = capsys.readouterr()
        assert code == cli.EXIT_OK, captured.out + captured.err
        assert "PASS  predictions" in captured.out
    # gunicorn's own log: the container's worker class (``-k gevent``) ran in this runtime.
    assert "Using worker: gevent" in endpoint.stderr.read_text(errors="replace")


# --- A broken runtime is the runtime's fault ------------------------------------------------------


def _break_module(python: Path, module: str) -> Path:
    """Replace ``module``'s file by one that imports :data:`MISSING` (never edit in place: uv
    links installed files to its cache, which other runtimes share)."""
    path = module_file(python, module)
    path.unlink()
    path.write_text(f"import {MISSING}\n", encoding="utf-8")
    return path


def test_a_runtime_that_fails_its_probe_is_reported_and_never_stamped(tmp_path: Path) -> None:
    """Installed but not importing: RuntimeBroken names the framework, the import and the cause,
    and the runtime is not stamped as current (the next run builds it again)."""
    framework = get_framework(DEFAULT_FRAMEWORK_VERSION)
    breaking = SourcePatch(
        module="sagemaker_containers._worker",
        old="from __future__ import absolute_import",
        new=f"from __future__ import absolute_import\nimport {MISSING}",
        reason="a fabricated fault",
    )
    broken = dataclasses.replace(framework, source_patches=(breaking,))
    build_dir = tmp_path / "build"
    with pytest.raises(RuntimeBroken) as caught:
        built(broken, build_dir)
    message = str(caught.value)
    assert f"runtime for framework {framework.version}" in message
    assert f"`import {PROBE_MODULES[0]}`" in message
    assert MISSING in message
    assert "not of your model" in message
    assert caught.value.framework == framework.version
    assert not is_current(broken, build_dir)
    assert not (runtime_dir(broken, build_dir) / "skdeploy-runtime.json").exists()


def test_an_edit_of_the_image_that_does_not_fit_is_refused_and_changes_nothing() -> None:
    """A SourcePatch whose text is not in the installed module names the framework and module,
    and leaves the file as it was (checked against the shared runtime, which it must not touch)."""
    framework = get_framework(DEFAULT_FRAMEWORK_VERSION)
    python = built(framework)
    module = "sagemaker_containers._mapping"
    path = module_file(python, module)
    before = path.read_bytes()
    misfit = SourcePatch(module=module, old=MISSING, new="x", reason="a fabricated misfit")
    with pytest.raises(RuntimeBroken) as caught:
        apply_patch(framework, python, misfit)
    assert f"runtime for framework {framework.version}" in str(caught.value)
    assert f"the image's edit to {module} cannot be made" in str(caught.value)
    assert path.read_bytes() == before


def test_a_runtime_broken_after_its_build_is_reported_as_the_runtimes_fault(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A built, stamped runtime whose serving library is then broken: ``check`` and ``serve``
    exit 2 naming that runtime, the failing import and its cause, and never blame the model."""
    framework = get_framework(DEFAULT_FRAMEWORK_VERSION)
    project = copy_project(tmp_path / "project")  # its own build/: the shared runtime is safe
    (project / "stacks" / f"Pulumi.{TEST_STACK}.yaml").write_text(
        "config:\n  aws:region: us-east-1\n  skdeploy:endpointName: skdeploy-broken-runtime\n"
    )
    python = built(framework, project / BUILD_DIR)
    assert is_current(framework, project / BUILD_DIR)
    _break_module(python, "sagemaker_containers._worker")

    where = ["--stack", TEST_STACK, "--project-dir", str(project)]
    code = cli.main(["check", *where])
    captured = capsys.readouterr()
    assert code == cli.EXIT_CANNOT_RUN, captured.out + captured.err
    for text in (captured.err, captured.out):
        assert "does not load" not in text
        assert "failed to load" not in text
    assert f"the local runtime for framework {framework.version}" in captured.err
    assert f"`import {PROBE_MODULES[0]}`" in captured.err
    assert MISSING in captured.err
    assert "not of your model" in captured.err

    served = subprocess.run(
        [sys.executable, "-m", "skdeploy", "serve", *where, "--port", "0"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert served.returncode == cli.EXIT_CANNOT_RUN, served.stderr
    assert f"the local runtime for framework {framework.version}" in served.stderr
    assert MISSING in served.stderr
    assert "failed to load" not in served.stderr


# --- The README says what is true ---------------------------------------------------------------


def frameworks_table() -> str:
    """The README's framework table, written from the framework table."""
    rows = [
        f"| `{f.version}` | yes | "
        + ("yes" if f.local_runtime else f"no: {f.refusal}")
        + f" | {f.python} | {f.scikit_learn} | {f.numpy} | {f.pandas} |"
        for f in FRAMEWORKS.values()
    ]
    header = "| framework | deploy | local run | Python | scikit-learn | numpy | pandas |"
    return "\n".join([header, "|---|---|---|---|---|---|---|", *rows])


def test_the_readmes_framework_table_matches_the_code() -> None:
    """Per version: deploys, runs locally (or why not), Python, scikit-learn, numpy, pandas."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    match = re.search(
        r"<!-- frameworks-table:[^>]*-->\n(.*?)\n<!-- /frameworks-table -->", readme, re.S
    )
    assert match, "framework table markers missing from README.md"
    assert match.group(1) == frameworks_table()
