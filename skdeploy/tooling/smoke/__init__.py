"""``skdeploy smoke``: prove that a deployed endpoint serves the model that was deployed.

Stock smoke tests return success without invoking anything (the SageMaker Projects template's
``test.py``), and a deploy can look green while SageMaker rolled the update back. This one
checks, each in a small function of its own:

``in-service``
    ``DescribeEndpoint`` until ``InService`` (a status line per poll on stderr), failing on
    ``Failed`` (with its ``FailureReason``) or at ``--timeout``. Skipped for a local
    ``--endpoint-url``: a local endpoint has no control plane.
``endpoint-config``
    ``DescribeEndpoint.EndpointConfigName`` equals the stack output ``endpointConfigName``; a
    difference means the update was rolled back. Skipped, never passed, without stack outputs.
``predictions``
    Every instance of ``samples.json`` through a real ``sagemaker-runtime`` client, in JSON
    batches within the payload limit; each answer within ``tolerance`` (absolute) of the expected
    prediction. Labels and other non-numbers must be equal.
``probabilities``
    Every sample again, asking for class probabilities (``"probabilities": true``), so every
    output the endpoint serves is exercised: the predictions must not change, each row must
    have one probability per class summing to 1, the classes must be those of ``samples.json``
    (when it lists them) and the probabilities within ``tolerance`` of its ``probabilities``
    (when it records them). A model that refuses with a 4xx (a regressor) is a skip; a 5xx (a
    classifier whose ``predict_proba`` fails, as a pickle from another scikit-learn can) fails.
``metrics``
    With ``targets`` in the samples: for a regressor RMSE, MAE and R², for a classifier (labels
    that are not numbers, ``classes`` listed, or ``accuracy`` recorded) accuracy and per-class
    counts, recomputed from the endpoint's answers and no worse than those recorded at training
    time (see :data:`METRICS_RELATIVE_SLACK`).
``bad-request``
    A request the model must refuse (a sample with one extra feature) is answered with a 4xx from
    the model: a 5xx means the handler crashed, a success means it served nonsense.
``latency``
    ``--calls`` single-row requests: p50, p95 and max in milliseconds.
``async`` (with ``--async-s3-dir DIR``, a local endpoint served with ``--s3-dir DIR``)
    Every sample in one ``InvokeEndpointAsync``, its input written to and its output read from
    the folder standing for S3, compared as ``predictions`` is (:mod:`.asynchronous`).

Exit codes (as every ``skdeploy`` command): 0 every check passed or was skipped, 1 a check
failed, 2 the smoke test cannot run (bad arguments or samples, no credentials, an endpoint that
does not exist or cannot be reached); the reason is one line on stderr.

The package: :mod:`.target` (where the endpoint is, which samples each run uses),
:mod:`.clients` (boto3 clients, one invocation), :mod:`.checks` (each check), :mod:`.metrics`
(the metrics check), :mod:`.asynchronous` (the async check), :mod:`.run` (every check in
order), :mod:`.report` (verdicts, text and JSON) and :mod:`.command` (``register`` and its
handler ``execute``). Import from the package.
"""

from __future__ import annotations

# Re-exported: the smoke test's samples are the ones every check reads (skdeploy.core.samples).
from skdeploy.core.samples import CannotRun, Samples, batches, load_samples
from skdeploy.tooling.smoke.asynchronous import LocalAsync
from skdeploy.tooling.smoke.checks import (
    PAYLOAD_LIMIT_BYTES,
    POLL_SECONDS,
    bad_request,
    check_bad_request,
    check_endpoint_config,
    check_in_service,
    check_latency,
    check_predictions,
    check_probabilities,
    percentile,
    prediction_error,
)
from skdeploy.tooling.smoke.clients import (
    CONTROL_CONFIG,
    LOCAL_CREDENTIALS,
    RUNTIME_CONFIG,
    Answer,
    Clients,
    TargetedRuntime,
    invoke,
    make_clients,
)
from skdeploy.tooling.smoke.command import execute, register, smoke_and_report
from skdeploy.tooling.smoke.metrics import (
    HIGHER_IS_BETTER,
    METRICS_ABSOLUTE_SLACK,
    METRICS_RELATIVE_SLACK,
    check_metrics,
    classification_metrics,
    is_worse,
    regression_metrics,
)
from skdeploy.tooling.smoke.report import (
    CHECK_BAD_REQUEST,
    CHECK_ENDPOINT_CONFIG,
    CHECK_IN_SERVICE,
    CHECK_LATENCY,
    CHECK_METRICS,
    CHECK_PREDICTIONS,
    CHECK_PROBABILITIES,
    CHECKS,
    FAIL,
    PASS,
    SKIP,
    Check,
    SmokeReport,
    Status,
    render_reports,
)
from skdeploy.tooling.smoke.run import (
    DEFAULT_LATENCY_CALLS,
    DEFAULT_TIMEOUT_SECONDS,
    run_smoke,
    smoke_variants,
)
from skdeploy.tooling.smoke.target import (
    Target,
    parse_stack_outputs,
    pulumi_stack_outputs,
    read_outputs_file,
    resolve_target,
    variant_runs,
)

__all__ = [
    "CHECKS",
    "CHECK_BAD_REQUEST",
    "CHECK_ENDPOINT_CONFIG",
    "CHECK_IN_SERVICE",
    "CHECK_LATENCY",
    "CHECK_METRICS",
    "CHECK_PREDICTIONS",
    "CHECK_PROBABILITIES",
    "CONTROL_CONFIG",
    "DEFAULT_LATENCY_CALLS",
    "DEFAULT_TIMEOUT_SECONDS",
    "FAIL",
    "HIGHER_IS_BETTER",
    "LOCAL_CREDENTIALS",
    "METRICS_ABSOLUTE_SLACK",
    "METRICS_RELATIVE_SLACK",
    "PASS",
    "PAYLOAD_LIMIT_BYTES",
    "POLL_SECONDS",
    "RUNTIME_CONFIG",
    "SKIP",
    "Answer",
    "CannotRun",
    "Check",
    "Clients",
    "LocalAsync",
    "Samples",
    "SmokeReport",
    "Status",
    "Target",
    "TargetedRuntime",
    "bad_request",
    "batches",
    "check_bad_request",
    "check_endpoint_config",
    "check_in_service",
    "check_latency",
    "check_metrics",
    "check_predictions",
    "check_probabilities",
    "classification_metrics",
    "execute",
    "invoke",
    "is_worse",
    "load_samples",
    "make_clients",
    "parse_stack_outputs",
    "percentile",
    "prediction_error",
    "pulumi_stack_outputs",
    "read_outputs_file",
    "register",
    "regression_metrics",
    "render_reports",
    "resolve_target",
    "run_smoke",
    "smoke_and_report",
    "smoke_variants",
    "variant_runs",
]
