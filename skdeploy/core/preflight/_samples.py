"""The samples check: ``samples.json`` is valid and each request fits InvokeEndpoint's limit."""

from __future__ import annotations

from skdeploy.core.constants import MAX_PAYLOAD_BYTES, MAX_SERVERLESS_PAYLOAD_BYTES, SAMPLES_FILE
from skdeploy.core.preflight._report import PreflightReport, project_path
from skdeploy.core.samples import CannotRun, batches, load_samples
from skdeploy.core.settings import EndpointSettings

__all__ = ["check_sample_requests"]


def check_sample_requests(settings: EndpointSettings, report: PreflightReport) -> None:
    """Each model folder's ``samples.json`` is valid, and its requests fit InvokeEndpoint's limit.

    The smoke test and load-and-predict send the samples in batches
    (:func:`skdeploy.core.samples.batches`), so a large file is fine; one sample too large for any
    request is not. With variants, each variant is smoke-tested against the samples of its own
    model folder.
    """
    limit = MAX_SERVERLESS_PAYLOAD_BYTES if settings.serverless is not None else MAX_PAYLOAD_BYTES
    for model_dir in dict.fromkeys(v.model_dir for v in settings.served_variants):
        path = model_dir / SAMPLES_FILE
        if not path.is_file():
            continue
        name = project_path(path, settings) if settings.several_models else SAMPLES_FILE
        try:
            samples = load_samples(path)
        except CannotRun as exc:
            report.add("sizes", "error", f"{name} cannot be used: {exc}")
            continue
        try:
            batches(samples.instances, limit)
        except CannotRun as exc:
            report.add(
                "sizes",
                "error",
                f"{name}: {exc} of a {settings.endpoint_kind} endpoint's InvokeEndpoint "
                "request: no client can send it",
            )
