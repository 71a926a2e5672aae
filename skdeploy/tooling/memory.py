"""The ``memory`` check of ``skdeploy check``: what loading the model really takes, measured.

The file size is a poor guide to a model's memory. A random forest of 1.2 GB on disk peaks at
2.4 GB in ``joblib.load`` (every node array is held by the unpickler while each tree copies it
into its own buffers); a compressed joblib file of a few MB can expand to gigabytes. So the
runtime phase of ``skdeploy check`` loads each model the endpoint runs as a serving worker
loads it and compares what it measured with the endpoint's memory:

- ``_skdeploy_serve_app.py --measure`` runs with the runtime's Python on the stack's own artifact,
after
  the pickle inspection (the static checks, and serve's gate again before anything is
  unpickled): gevent patched, the serving stack and scikit-learn imported, then the user module
  imported and ``model_fn`` called through sagemaker-containers' Transformer, as a gunicorn
  worker does. It reports its RSS before the load and its peak (``VmHWM``) after it, so the
  peak counts the serving stack (about 120 MiB) as well as the load.
- That peak, times the workers of one instance (one per vCPU; a serverless endpoint counts one),
  must stay within :data:`~skdeploy.core.preflight.MEMORY_BUDGET` of the instance's memory or of
  ``serverless.memoryMb``, as the static ``sizes`` check holds the file sizes; a model that does
  not fit is refused by name, with the figures and the fix.

The static ``sizes`` check stays: it needs no runtime, so ``pulumi preview`` and
``check --static`` run it, and a model whose files alone do not fit never gets this far.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from skdeploy.core.artifact import ArtifactError
from skdeploy.core.preflight import MEMORY_BUDGET, MemoryLimit, PreflightReport, memory_limit
from skdeploy.core.settings import EndpointSettings, VariantSettings
from skdeploy.tooling import local
from skdeploy.tooling.common import EXIT_CANNOT_RUN, progress
from skdeploy.tooling.runtime import RuntimeUnavailable

CHECK = "memory"
#: How a :class:`CannotMeasure` starts: neither runtime check can run without the runtime.
CANNOT_RUN = "memory and load-and-predict cannot run here (--static runs the other checks): "
#: Lines of the measuring process's stderr quoted when the model does not load.
_TAIL_LINES = 30


class CannotMeasure(RuntimeError):
    """The runtime cannot be had here (no local runtime for the framework, no Python 3.9)."""


class LoadFailed(RuntimeError):
    """The model did not load in the runtime; the message carries the end of its stderr."""


@dataclass(frozen=True)
class Verdict:
    """A measured load compared with the memory of one instance (or the serverless endpoint)."""

    load: local.LoadReport
    limit: MemoryLimit

    @property
    def needed_bytes(self) -> int:
        """The peak once per worker."""
        return self.load.peak_bytes * self.limit.workers

    @property
    def fits(self) -> bool:
        """Whether the copies stay within :data:`MEMORY_BUDGET` of the memory."""
        return self.needed_bytes <= self.limit.budget_bytes

    def describe(self) -> str:
        """What was measured, the workers and the total against the budget, in words."""
        load, limit = self.load, self.limit
        workers = (
            f"{limit.workers} workers per instance (one per vCPU)"
            if limit.workers > 1
            else "1 worker"
        )
        return (
            f"a serving worker peaked at {_mib(load.peak_bytes)} loading it (measured in the "
            f"runtime: {_mib(load.before_bytes)} of Python and the serving stack, then model_fn "
            f"returned {load.model} in {load.seconds:.1f} s); {workers}: "
            f"{_mib(self.needed_bytes)}, {'within' if self.fits else 'over'} "
            f"{int(MEMORY_BUDGET * 100)} % of {limit.where} ({_mib(limit.budget_bytes)})"
        )


def _mib(size: float) -> str:
    return f"{size / 1024**2:,.0f} MiB"


def measure(
    settings: EndpointSettings, variant: VariantSettings, *, timeout: float
) -> local.LoadReport:
    """Load ``variant``'s model once in the runtime as a serving worker does; report its memory.

    Raises :class:`CannotMeasure` when the runtime cannot run here and :class:`LoadFailed` when
    the model does not load (inspection refusal, import error, ``model_fn`` raising, timeout).
    """
    narrowed = settings.only_variant(variant.name) if settings.several_models else settings
    options = local.ServeOptions(serverless=settings.serverless is not None)
    with tempfile.TemporaryDirectory(prefix="skdeploy-measure-") as folder:
        tmp = Path(folder)
        try:
            prepared = local.prepare_model(narrowed, options, tmp, port=0, say=progress)
        except RuntimeUnavailable as exc:
            raise CannotMeasure(f"{CANNOT_RUN}{exc}") from exc
        except local.ServeError as exc:
            if exc.exit_code == EXIT_CANNOT_RUN:
                raise CannotMeasure(f"{CANNOT_RUN}{exc}") from exc
            raise LoadFailed(str(exc)) from exc
        except (ArtifactError, local.UnsafeArchiveError) as exc:
            raise LoadFailed(str(exc)) from exc
        report = tmp / "load.json"
        try:
            done = subprocess.run(
                [str(prepared.python), str(local.SERVE_APP), "--measure", str(report)],
                env=prepared.env,
                cwd=tmp,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise LoadFailed(f"model_fn did not return within {timeout:.0f} s") from None
        if done.returncode != 0 or not report.is_file():
            tail = "\n".join(done.stderr.splitlines()[-_TAIL_LINES:])
            raise LoadFailed(f"loading it exited with status {done.returncode}:\n{tail}")
        return local.LoadReport.from_json(json.loads(report.read_text()))


def check_memory(
    settings: EndpointSettings,
    report: PreflightReport,
    *,
    say: Callable[[str], None] = progress,
    timeout: float = local.DEFAULT_STARTUP_TIMEOUT,
) -> None:
    """The ``memory`` check: measure each model the endpoint runs, compare, refuse by name.

    Variants that share a model and handlers are measured once. Raises :class:`CannotMeasure`
    when the runtime cannot be had here (no Python of the container's version): no verdict on
    the model. A framework without a local runtime is left to load-and-predict, which refuses
    to run with the framework's reason.
    """
    report.checks_run.append(CHECK)
    framework = settings.framework
    if not framework.local_runtime:
        return  # nothing can load it here; load-and-predict, next, says why and stops the check
    measured: dict[tuple[Path, Path, tuple[str, ...]], local.LoadReport | str] = {}
    for variant in settings.served_variants:
        on_disk = sum((variant.model_dir / name).stat().st_size for name in variant.model_files)
        label = f"{', '.join(variant.model_files)} ({on_disk / 1e6:,.1f} MB on disk)"
        if settings.several_models:
            label = f"{variant.name}: {label}"
        key = (variant.model_dir, variant.inference_dir, variant.model_files)
        if key not in measured:
            say(f"memory of {label}: loading it in the {framework.version} runtime as a worker")
            try:
                measured[key] = measure(settings, variant, timeout=timeout)
            except LoadFailed as exc:
                measured[key] = str(exc)
        _judge(report, label, measured[key], memory_limit(settings, variant), say)


def _judge(
    report: PreflightReport,
    label: str,
    load: local.LoadReport | str,
    limit: MemoryLimit | None,
    say: Callable[[str], None],
) -> None:
    """One finding (or a progress line) for one variant's measured load."""
    if isinstance(load, str):
        report.add(
            CHECK,
            "error",
            f"{label}: the model does not load in the runtime, so neither its memory nor its "
            f"predictions can be checked: {load}",
        )
        return
    if limit is None:
        report.add(
            CHECK,
            "warning",
            f"{label}: a serving worker peaked at {_mib(load.peak_bytes)} loading it; the "
            "instance type's memory is not in skdeploy's table, so that is not compared",
        )
        return
    verdict = Verdict(load, limit)
    if verdict.fits:
        say(f"memory of {label}: {verdict.describe()}")
    else:
        report.add(
            CHECK, "error", f"{label}: {verdict.describe()}: {limit.fix}, or make the model smaller"
        )
