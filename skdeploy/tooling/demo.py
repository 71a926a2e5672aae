"""``skdeploy check`` and ``skdeploy demo``: the daily loop, on this machine.

``check`` runs every preflight check: the static ones the Pulumi program also runs, then the one
that needs the container-faithful runtime — the model is loaded by the local endpoint and
``samples.json`` predicted and compared. ``demo`` is the README's main command: build → check →
serve locally → smoke test → plan → stop, with a summary.

:func:`background_endpoint` runs ``skdeploy serve --port 0`` as a child process until the block
ends; the tests' ``local_endpoint`` fixture uses it too.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, replace
from pathlib import Path

from skdeploy.core import artifact, preflight
from skdeploy.core.constants import SAMPLES_FILE
from skdeploy.core.settings import EndpointSettings, SettingsError, stack_file
from skdeploy.tooling import common, memory, plan, smoke

#: Seconds ``serve`` may take to become healthy (the first run also builds the runtime).
READY_TIMEOUT = 600.0


class EndpointFailed(RuntimeError):
    """The local endpoint exited before it was healthy; the message carries its stderr.

    ``exit_code`` is ``skdeploy serve``'s (None when it was still running at the timeout):
    :data:`skdeploy.tooling.common.EXIT_CANNOT_RUN` means it could not try (no runtime for the
    framework), anything else that the model or the server failed.
    """

    def __init__(self, message: str, exit_code: int | None = None) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class CheckCannotRun(RuntimeError):
    """A check could not be carried out on this machine (exit 2): no verdict on the project."""


@dataclass(frozen=True)
class RunningEndpoint:
    """A local endpoint started by :func:`background_endpoint`."""

    url: str
    port: int
    endpoint_name: str
    region: str
    pid: int
    server_pid: int
    base_dir: Path
    process: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def serve_command(project_dir: Path, stack: str, *extra: str) -> list[str]:
    """``python -m skdeploy serve`` for a project and stack, on a free port."""
    return [
        sys.executable,
        "-m",
        "skdeploy",
        "serve",
        "--stack",
        stack,
        "--project-dir",
        str(project_dir),
        "--port",
        "0",
        *extra,
    ]


@contextmanager
def background_endpoint(
    project_dir: Path, stack: str, logs: Path, *extra: str, timeout: float = READY_TIMEOUT
) -> Iterator[RunningEndpoint]:
    """Run ``skdeploy serve --stack STACK --port 0`` until the block ends; always stop it."""
    logs.mkdir(parents=True, exist_ok=True)
    ready = logs / "ready.json"
    ready.unlink(missing_ok=True)
    stdout, stderr = logs / "serve.out", logs / "serve.err"
    command = serve_command(project_dir, stack, "--ready-file", str(ready), *extra)
    with stdout.open("wb") as out, stderr.open("wb") as err:
        process = subprocess.Popen(command, stdout=out, stderr=err)
    server_pid: int | None = None
    try:
        deadline = time.monotonic() + timeout
        while not ready.exists():
            if process.poll() is not None:
                raise EndpointFailed(
                    f"skdeploy serve exited with {process.returncode} before it was healthy:\n"
                    f"{_tail(stderr)}",
                    process.returncode,
                )
            if time.monotonic() > deadline:
                raise EndpointFailed(
                    f"skdeploy serve was not healthy within {timeout:.0f} s:\n{_tail(stderr)}"
                )
            time.sleep(0.1)
        info = json.loads(ready.read_text())
        server_pid = int(info["server_pid"])
        yield RunningEndpoint(
            url=info["url"],
            port=int(info["port"]),
            endpoint_name=info["endpoint_name"],
            region=info["region"],
            pid=int(info["pid"]),
            server_pid=int(info["server_pid"]),
            base_dir=Path(info["base_dir"]),
            process=process,
            stdout=stdout,
            stderr=stderr,
        )
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if server_pid is not None:  # never leave gunicorn behind, even if serve was killed
            with suppress(ProcessLookupError, PermissionError):
                os.killpg(server_pid, signal.SIGKILL)


def load_and_predict(
    settings: EndpointSettings, report: preflight.PreflightReport, *, model: str | None = None
) -> None:
    """Load each model the endpoint runs in the local runtime; compare with its ``samples.json``.

    With variants (or a shadow) each one is served in turn (``skdeploy serve --variant``) and
    checked against the samples in its own model folder; ``model`` serves one model of a stack
    of several (``skdeploy serve --model``), ``settings`` being that model's view. Raises
    :class:`CheckCannotRun` when the runtime cannot be had here (a framework without a local
    runtime, no Python of the container's version): that is no verdict on the model.
    """
    report.checks_run.append("load-and-predict")
    framework = settings.framework
    if not framework.local_runtime:
        raise CheckCannotRun(
            f"load-and-predict cannot run here (--static runs the other checks): framework "
            f"{framework.version} is deploy only, no local run: {framework.refusal}"
        )
    several = settings.several_models
    for variant in settings.served_variants:
        extra: tuple[str, ...] = ("--variant", variant.name) if several else ()
        if model is not None:  # one model of a multi-model stack, served alone
            extra = ("--model", model)
        prefix = f"{variant.name}: " if several else ""
        common.progress(
            f"load-and-predict{' of ' + variant.name if several else ''}: serving the model in "
            f"the {settings.framework.version} runtime and sending its samples"
        )
        _load_and_predict_one(settings, variant.model_dir / SAMPLES_FILE, extra, prefix, report)


def _load_and_predict_one(
    settings: EndpointSettings,
    samples_path: Path,
    extra: tuple[str, ...],
    prefix: str,
    report: preflight.PreflightReport,
) -> None:
    if not samples_path.is_file():
        report.add(
            "load-and-predict", "warning", f"{prefix}no {samples_path.name}: predictions unchecked"
        )
        return
    try:
        samples = smoke.load_samples(samples_path)
    except smoke.CannotRun as exc:
        report.add("load-and-predict", "error", f"{prefix}{exc}")
        return
    with tempfile.TemporaryDirectory(prefix="skdeploy-check-") as logs:
        try:
            with background_endpoint(
                settings.project_dir, settings.stack, Path(logs), *extra
            ) as endpoint:
                target = smoke.Target(
                    endpoint.endpoint_name, endpoint.region, "local check", endpoint.url
                )
                clients = smoke.make_clients(target)
                verdict, _answers = smoke.check_predictions(
                    clients.runtime, endpoint.endpoint_name, samples
                )
                # Every output the endpoint serves: a classifier's probabilities too.
                probabilities = smoke.check_probabilities(
                    clients.runtime, endpoint.endpoint_name, samples
                )
        except EndpointFailed as exc:
            if exc.exit_code == common.EXIT_CANNOT_RUN:
                raise CheckCannotRun(
                    f"load-and-predict cannot run here (--static runs the other checks): {exc}"
                ) from exc
            report.add("load-and-predict", "error", f"{prefix}the model does not load: {exc}")
            return
        except smoke.CannotRun as exc:
            report.add("load-and-predict", "error", f"{prefix}the samples cannot be sent: {exc}")
            return
    if verdict.status != smoke.PASS:
        report.add("load-and-predict", "error", f"{prefix}{verdict.detail}")
    if probabilities.status == smoke.FAIL:
        report.add("load-and-predict", "error", f"{prefix}probabilities: {probabilities.detail}")


def run_check(settings: EndpointSettings, *, runtime: bool = True) -> preflight.PreflightReport:
    """Static checks, then (unless ``runtime`` is false or they failed) the runtime ones: the
    memory of a real load (:mod:`skdeploy.tooling.memory`), then, if it fits, load and predict;
    for a stack of several ``models``, each model alone, as SageMaker loads each on demand."""
    report = preflight.static_checks(settings)
    if not (runtime and report.ok):
        return report
    for name, view in settings.model_views:  # one view, unless the stack has several models
        if settings.multi_model:
            common.progress(f"model {name}: measuring its load, then loading and predicting")
        found = len(report.findings)
        try:
            memory.check_memory(view, report)
        except memory.CannotMeasure as exc:
            raise CheckCannotRun(str(exc)) from exc
        if report.ok:
            load_and_predict(view, report, model=name if settings.multi_model else None)
        if settings.multi_model:  # each model is served alone: say which one a finding is of
            report.findings[found:] = [
                replace(f, message=f"{name}: {f.message}") for f in report.findings[found:]
            ]
    return report


def _check_command(args: argparse.Namespace) -> int:
    if not stack_file(Path(args.project_dir).resolve(), args.stack).is_file():
        common.stack_settings(args)  # raises the "no stack file" SettingsError: exit 2
    try:
        settings = common.stack_settings(args)
    except SettingsError as exc:
        report = preflight.PreflightReport(args.stack, checks_run=["settings"])
        report.extend("settings", "error", exc.problems)
    else:
        try:
            report = run_check(settings, runtime=not args.static)
        except CheckCannotRun as exc:
            print(f"skdeploy: {exc}", file=sys.stderr)
            return common.EXIT_CANNOT_RUN
    print(json.dumps(report.to_json(), indent=2) if args.json else report.render())
    return common.EXIT_OK if report.ok else common.EXIT_FAILED


@dataclass
class Step:
    """One step of the demo and how it went."""

    name: str
    ok: bool
    seconds: float
    detail: str


def _timed(steps: list[Step], name: str, run: Callable[[], tuple[bool, str]]) -> bool:
    common.progress(f"[{len(steps) + 1}] {name} ...")
    start = time.monotonic()
    ok, detail = run()
    steps.append(Step(name, ok, time.monotonic() - start, detail))
    common.progress(f"[{len(steps)}] {name}: {'ok' if ok else 'FAILED'} — {detail}")
    return ok


def smoke_local(settings: EndpointSettings, url: str) -> int:
    """``skdeploy smoke --endpoint-url URL`` for the stack: its report printed, its exit code."""
    target = smoke.Target(
        settings.endpoint_name, settings.region, f"stack settings of {settings.stack}", url
    )
    runs = smoke.variant_runs(None, None, lambda: settings, local=True)  # the served one
    return smoke.smoke_and_report(target, runs)


def print_plan(settings: EndpointSettings) -> int:
    """``skdeploy plan`` for the stack: the plan printed as text, its exit code."""
    from skdeploy.infra.endpoint import EndpointReplacementRefused

    try:
        built = plan.build_plan(settings.project_dir, settings.stack)
    except (preflight.PreflightError, EndpointReplacementRefused) as exc:
        print(exc, file=sys.stderr)
        print("skdeploy: the program refuses to declare this stack; no plan", file=sys.stderr)
        return common.EXIT_FAILED
    sys.stdout.write(plan.render_plan_text(built))
    return common.EXIT_OK


def _demo_command(args: argparse.Namespace) -> int:
    settings = common.stack_settings(args)
    steps: list[Step] = []

    def build() -> tuple[bool, str]:
        built = artifact.build_for_settings(settings, progress=common.progress)
        return True, f"{built.path.name} {built.sha256[:12]}… ({built.bytes} bytes)"

    def check() -> tuple[bool, str]:
        report = run_check(settings, runtime=False)
        if not report.ok:
            print(report.render())
        return report.ok, f"{len(report.errors)} error(s) in {', '.join(report.checks_run)}"

    def serve_and_smoke() -> tuple[bool, str]:
        with tempfile.TemporaryDirectory(prefix="skdeploy-demo-") as logs:
            try:
                with background_endpoint(settings.project_dir, settings.stack, Path(logs)) as ep:
                    common.progress(f"local endpoint {ep.endpoint_name} at {ep.url}")
                    code = common.guarded(lambda: smoke_local(settings, ep.url))
            except EndpointFailed as exc:
                return False, str(exc)
        return code == common.EXIT_OK, f"smoke test exit code {code} against the local endpoint"

    def offline_plan() -> tuple[bool, str]:
        code = common.guarded(lambda: print_plan(settings))
        return code == common.EXIT_OK, f"offline plan exit code {code}"

    for name, run in (
        ("build the artifact", build),
        ("preflight checks", check),
        (
            "serve locally + smoke test (loads and predicts in the container runtime)",
            serve_and_smoke,
        ),
        ("offline plan", offline_plan),
    ):
        if not _timed(steps, name, run):
            break
    print("\nskdeploy demo summary")
    for step in steps:
        print(f"  {'ok  ' if step.ok else 'FAIL'} {step.seconds:6.1f}s  {step.name}: {step.detail}")
    passed = len(steps) == 4 and all(s.ok for s in steps)
    print("demo passed" if passed else "demo FAILED")
    return common.EXIT_OK if passed else common.EXIT_FAILED


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``check`` and ``demo``."""
    check = sub.add_parser(
        "check", help="every preflight check, including load-and-predict in the local runtime"
    )
    common.add_stack_arguments(check)
    check.add_argument("--json", action="store_true", help="print the report as JSON")
    check.add_argument(
        "--static",
        action="store_true",
        help="only the checks the Pulumi program runs (no runtime virtualenv needed)",
    )
    check.set_defaults(handler=_check_command)

    demo = sub.add_parser("demo", help="build → check → serve locally → smoke test → plan")
    common.add_stack_arguments(demo)
    demo.set_defaults(handler=_demo_command)
