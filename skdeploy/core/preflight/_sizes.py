"""The size check: the model fits the endpoint's memory, once per worker."""

from __future__ import annotations

from dataclasses import dataclass

from skdeploy.core.preflight._report import PreflightReport
from skdeploy.core.preflight._samples import check_sample_requests
from skdeploy.core.settings import EndpointSettings, VariantSettings

__all__ = ["INSTANCE_MEMORY", "MEMORY_BUDGET", "MemoryLimit", "check_sizes", "memory_limit"]

#: Memory (GiB) and vCPUs of common real-time instance types. Each gunicorn worker (one per vCPU
#: by default) loads its own copy of the model, so the model must fit that many times.
INSTANCE_MEMORY: dict[str, tuple[float, int]] = {
    "ml.t2.medium": (4, 2),
    "ml.t2.large": (8, 2),
    "ml.t2.xlarge": (16, 4),
    "ml.t2.2xlarge": (32, 8),
    "ml.m5.large": (8, 2),
    "ml.m5.xlarge": (16, 4),
    "ml.m5.2xlarge": (32, 8),
    "ml.m5.4xlarge": (64, 16),
    "ml.c5.large": (4, 2),
    "ml.c5.xlarge": (8, 4),
    "ml.c5.2xlarge": (16, 8),
    "ml.c5.4xlarge": (32, 16),
    "ml.r5.large": (16, 2),
    "ml.r5.xlarge": (32, 4),
    "ml.r5.2xlarge": (64, 8),
}
#: Share of instance memory the model copies may take; the rest is Python, numpy and requests.
MEMORY_BUDGET = 0.7


def check_sizes(settings: EndpointSettings, report: PreflightReport) -> None:
    """The model fits the endpoint's memory; each sample request fits the payload limit."""
    report.checks_run.append("sizes")
    _check_memory(settings, report)
    check_sample_requests(settings, report)


def _check_memory(settings: EndpointSettings, report: PreflightReport) -> None:
    """Each model the endpoint runs (every variant and the shadow) fits its own memory."""
    for variant in settings.served_variants:
        prefix = f"{variant.name}: " if settings.several_models else ""
        _check_variant_memory(settings, variant, report, prefix)


@dataclass(frozen=True)
class MemoryLimit:
    """The memory one instance of a variant has, and how many model copies share it.

    An instance runs one gunicorn worker per vCPU, each loading its own copy. A serverless
    endpoint's vCPUs are not published, so it is held to at least one copy in ``memoryMb``.
    """

    memory_bytes: int
    workers: int
    #: The memory in words (``the 2048 MB of the serverless endpoint``).
    where: str
    #: What to change when the model does not fit.
    fix: str

    @property
    def budget_bytes(self) -> float:
        """What the model copies may take: :data:`MEMORY_BUDGET` of the memory."""
        return MEMORY_BUDGET * self.memory_bytes


def memory_limit(settings: EndpointSettings, variant: VariantSettings) -> MemoryLimit | None:
    """The memory ``variant`` runs in, or None when its instance type is not in the table."""
    if settings.serverless is not None:
        return MemoryLimit(
            settings.serverless.memory_mb * 1024**2,
            1,
            f"the {settings.serverless.memory_mb} MB of the serverless endpoint",
            "raise serverless.memoryMb (at most 6144) or use instances",
        )
    spec = INSTANCE_MEMORY.get(variant.instance_type)
    if spec is None:
        return None
    memory_gib, workers = spec
    return MemoryLimit(
        int(memory_gib * 1024**3),
        workers,
        f"the {memory_gib:g} GiB of {variant.instance_type}",
        "choose a larger instance",
    )


def _check_variant_memory(
    settings: EndpointSettings, variant: VariantSettings, report: PreflightReport, prefix: str
) -> None:
    """Model bytes on disk, once per worker, within :data:`MEMORY_BUDGET` of the memory.

    The file size is a cheap lower bound (``pulumi preview``, ``check --static``): a model
    whose files alone do not fit is refused here. What loading really takes (decompressed
    arrays, copies made while unpickling, the serving stack) is measured by ``skdeploy check``
    in the runtime (:mod:`skdeploy.tooling.memory`).
    """
    model_bytes = sum((variant.model_dir / n).stat().st_size for n in variant.model_files)
    limit = memory_limit(settings, variant)
    if limit is None:
        report.add(
            "sizes",
            "warning",
            f"{prefix}memory of {variant.instance_type} is not in skdeploy's table: model size "
            "unchecked",
        )
        return
    needed = model_bytes * limit.workers
    if needed > limit.budget_bytes:
        copies = f"loaded by {limit.workers} workers" if limit.workers > 1 else "loaded once"
        report.add(
            "sizes",
            "error",
            f"{prefix}model files of {model_bytes / 1e6:.0f} MB {copies} need about "
            f"{needed / 1e9:.1f} GB, over {int(MEMORY_BUDGET * 100)} % of {limit.where}: "
            f"{limit.fix} (file size on disk, a lower bound of what loading takes)",
        )
