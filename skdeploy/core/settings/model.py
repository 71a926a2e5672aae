"""What a stack's settings become: frozen, validated plain values, no Pulumi types.

The parser (:mod:`.parse`) builds these once per stack, after it has collected every problem;
the program, the component, the local server and the smoke test all read the same objects. The
parts (autoscaling, deployment, variants, ...) check their fields against the schema's members
when built, so one made elsewhere (a test, ``dataclasses.replace``) cannot hold a value the
parser would refuse: a :class:`ValueError` lists every problem.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from skdeploy.core.constants import (
    CSV_HEADER_DEFAULT,
    DEFAULT_VARIANT,
    ENV_CSV_HEADER,
    ENV_PROBABILITIES,
    REQUIREMENTS_FILE,
)
from skdeploy.core.frameworks import FRAMEWORKS, Framework
from skdeploy.core.pickle.inspect import InspectionLimits
from skdeploy.core.settings._patterns import S3_URI_PATTERN
from skdeploy.core.settings._rules import member_problems, refuse_invalid
from skdeploy.core.settings.batch import BatchSettings
from skdeploy.core.settings.members import (
    API,
    ASYNC,
    AUTOSCALING,
    DATA_CAPTURE,
    DEPLOYMENT,
    SERVERLESS,
    THROTTLE,
    VARIANT,
    VPC,
)
from skdeploy.core.settings.multimodel import ModelSettings


@dataclass(frozen=True)
class ServerlessSettings:
    """A serverless variant: memory in MB, concurrent invocations, optional provisioned ones."""

    memory_mb: int = 2048
    max_concurrency: int = 5
    provisioned_concurrency: int | None = None

    def __post_init__(self) -> None:
        problems = member_problems(self, SERVERLESS)
        provisioned = self.provisioned_concurrency
        if provisioned is not None and not problems and provisioned > self.max_concurrency:
            problems.append("provisionedConcurrency must not exceed maxConcurrency")
        refuse_invalid("serverless", problems)


@dataclass(frozen=True)
class AutoscalingSettings:
    """Target tracking on invocations per instance, between ``min`` and ``max`` instances."""

    min: int
    max: int
    target_invocations_per_instance: float = 100.0
    scale_in_cooldown: int = 300
    scale_out_cooldown: int = 60

    def __post_init__(self) -> None:
        problems = member_problems(self, AUTOSCALING)
        if not problems and self.min > self.max:
            problems.append("min must not exceed max")
        refuse_invalid("autoscaling", problems)


@dataclass(frozen=True)
class AsyncInferenceSettings:
    """Asynchronous inference: requests queued, results written to S3, optional SNS notices.

    With ``autoscaling``, instances track the queue (``ApproximateBacklogSizePerInstance``)
    instead of invocations, and ``scale_to_zero`` lets the variants scale in to no instance.
    """

    input_path: str
    output_path: str
    failure_path: str | None = None
    success_topic_arn: str | None = None
    error_topic_arn: str | None = None
    max_concurrent_invocations_per_instance: int | None = None
    target_backlog_per_instance: float = 5.0
    scale_to_zero: bool = False

    def __post_init__(self) -> None:
        refuse_invalid("async", member_problems(self, ASYNC))

    @property
    def read_location(self) -> tuple[str, str]:
        """(bucket, key prefix) of the input path: the one place SageMaker reads requests from."""
        match = S3_URI_PATTERN.match(self.input_path)
        assert match is not None  # checked when built
        return match["bucket"], (match["prefix"] or "").strip("/")

    @property
    def write_locations(self) -> tuple[tuple[str, str], ...]:
        """(bucket, key prefix) of the output and failure paths: where SageMaker writes."""
        paths = [self.output_path] + ([self.failure_path] if self.failure_path else [])
        locations = []
        for path in paths:
            match = S3_URI_PATTERN.match(path)
            assert match is not None  # checked when built
            locations.append((match["bucket"], (match["prefix"] or "").strip("/")))
        return tuple(dict.fromkeys(locations))

    @property
    def topic_arns(self) -> tuple[str, ...]:
        """The SNS topics SageMaker publishes to, each once."""
        topics = (self.success_topic_arn, self.error_topic_arn)
        return tuple(dict.fromkeys(t for t in topics if t))


@dataclass(frozen=True)
class DeploymentSettings:
    """Blue/green update with traffic shifting and auto-rollback on the program's two alarms."""

    strategy: str = "all-at-once"
    canary_percent: int = 10
    linear_step_percent: int = 20
    wait_seconds: int = 300
    termination_wait_seconds: int = 0
    max_execution_seconds: int = 3600
    error_threshold: int = 5
    latency_threshold_ms: int = 1000
    alarm_topic_arn: str | None = None

    def __post_init__(self) -> None:
        refuse_invalid("deployment", member_problems(self, DEPLOYMENT))


@dataclass(frozen=True)
class DataCaptureSettings:
    """Requests and/or responses written to S3 (``bucket`` None: the artifact bucket)."""

    sampling_percent: int = 100
    prefix: str = "datacapture"
    capture_content: str = "both"
    bucket: str | None = None

    def __post_init__(self) -> None:
        refuse_invalid("dataCapture", member_problems(self, DATA_CAPTURE))


@dataclass(frozen=True)
class VariantSettings:
    """One production (or shadow) variant: its own model, handlers and capacity."""

    name: str
    model_dir: Path
    inference_dir: Path
    model_files: tuple[str, ...]
    weight: float
    instance_type: str
    instance_count: int

    def __post_init__(self) -> None:
        refuse_invalid(f"variant {self.name!r}", member_problems(self, VARIANT))


@dataclass(frozen=True)
class ApiSettings:
    """An HTTPS front door: ``POST /predict`` through API Gateway and a Lambda function."""

    auth: str = "iam"
    throttle_rate: float = 10.0
    throttle_burst: int = 20

    def __post_init__(self) -> None:
        renamed = {"rate": "throttle_rate", "burst": "throttle_burst"}
        refuse_invalid("api", member_problems(self, (*API, *THROTTLE), renamed))


@dataclass(frozen=True)
class VpcSettings:
    """Subnets and security groups the model's containers run in."""

    subnet_ids: tuple[str, ...]
    security_group_ids: tuple[str, ...]

    def __post_init__(self) -> None:
        refuse_invalid("vpc", member_problems(self, VPC))


@dataclass(frozen=True)
class EndpointSettings:
    """Validated settings of one stack: plain values, no Pulumi types."""

    stack: str
    project_dir: Path
    region: str
    model_dir: Path
    inference_dir: Path
    framework_version: str
    instance_type: str
    instance_count: int
    endpoint_name: str
    network_isolation: bool
    image_uri: str | None
    model_files: tuple[str, ...]
    tags: Mapping[str, str] = field(default_factory=dict)
    allow_version_skew: bool = False
    serverless: ServerlessSettings | None = None
    autoscaling: AutoscalingSettings | None = None
    #: SageMaker asynchronous inference (the ``async`` key; ``async`` is a Python keyword).
    async_inference: AsyncInferenceSettings | None = None
    deployment: DeploymentSettings | None = None
    data_capture: DataCaptureSettings | None = None
    kms_key_arn: str | None = None
    vpc: VpcSettings | None = None
    startup_health_check_timeout_seconds: int | None = None
    model_download_timeout_seconds: int | None = None
    log_retention_days: int = 30
    protect: bool = False
    allow_endpoint_replacement: bool = False
    api: ApiSettings | None = None
    variants: tuple[VariantSettings, ...] = ()
    shadow: VariantSettings | None = None
    #: The models of a multi-model endpoint (``models``); empty for every other stack.
    models: tuple[ModelSettings, ...] = ()
    #: Bounds of the pickle inspection of this stack's model files (``pickleLimits``).
    pickle_limits: InspectionLimits = field(default_factory=InspectionLimits)
    #: Requirements of a production stack it goes without (``productionOverrides``).
    production_overrides: frozenset[str] = frozenset()
    #: The user's modules whose top-level classes the pickle may name (``trustedModules``).
    trusted_modules: tuple[str, ...] = ()
    #: Whether classifiers answer probabilities unless a request says otherwise.
    probabilities: bool = False
    #: Whether a CSV body starts with a header row: ``auto``, ``present`` or ``absent``.
    csv_header: str = CSV_HEADER_DEFAULT
    #: The variant a single-model view of the stack serves (set by :meth:`only_variant`): a
    #: local server answers as this variant.
    serving_variant: str = DEFAULT_VARIANT
    #: The artifact already in the bucket the stack serves instead of a build (a rollback).
    artifact_sha256: str | None = None
    #: How ``skdeploy batch`` splits and runs a dataset (``batch``).
    batch: BatchSettings = field(default_factory=BatchSettings)

    @property
    def endpoint_kind(self) -> str:
        """``serverless`` or ``instances``: AWS cannot turn one into the other in place."""
        return "serverless" if self.serverless is not None else "instances"

    @property
    def framework(self) -> Framework:
        """The framework table entry of ``framework_version``."""
        return FRAMEWORKS[self.framework_version]

    @property
    def production_variants(self) -> tuple[VariantSettings, ...]:
        """The variants serving traffic: ``variants``, or one ``AllTraffic`` from the top keys."""
        if self.variants:
            return self.variants
        return (
            VariantSettings(
                DEFAULT_VARIANT,
                self.model_dir,
                self.inference_dir,
                self.model_files,
                1.0,
                self.instance_type,
                self.instance_count,
            ),
        )

    @property
    def several_models(self) -> bool:
        """Whether the endpoint runs more than the top-level model: ``variants`` or a shadow."""
        return bool(self.variants) or self.shadow is not None

    @property
    def multi_model(self) -> bool:
        """Whether one endpoint serves ``models`` in SageMaker's MultiModel mode."""
        return bool(self.models)

    @property
    def model_views(self) -> tuple[tuple[str, EndpointSettings], ...]:
        """Each model with the single-model view of the stack that serves it alone.

        A multi-model stack's models are checked, built, served locally and smoke-tested each
        exactly as a single model is; any other stack is its own one view (named ``""``).
        """
        if not self.models:
            return (("", self),)
        return tuple(
            (
                m.name,
                replace(
                    self,
                    model_dir=m.model_dir,
                    inference_dir=m.inference_dir,
                    model_files=m.model_files,
                    models=(),
                ),
            )
            for m in self.models
        )

    @property
    def served_variants(self) -> tuple[VariantSettings, ...]:
        """Every model the endpoint runs: the production variants, then the shadow if any."""
        return (*self.production_variants, *((self.shadow,) if self.shadow else ()))

    def only_variant(self, name: str | None = None) -> EndpointSettings:
        """These settings narrowed to one served variant (the first production one by default).

        ``skdeploy serve`` and the smoke test's samples handle one model at a time. Raises
        :class:`ValueError` naming the variants the stack has when ``name`` is not one of them.
        """
        variants = self.served_variants
        chosen = (
            variants[0] if name is None else next((v for v in variants if v.name == name), None)
        )
        if chosen is None:
            raise ValueError(
                f"stack {self.stack!r} has no variant {name!r}; it serves "
                + ", ".join(v.name for v in variants)
            )
        return replace(
            self,
            model_dir=chosen.model_dir,
            inference_dir=chosen.inference_dir,
            model_files=chosen.model_files,
            instance_type=chosen.instance_type,
            instance_count=chosen.instance_count,
            variants=(),
            shadow=None,
            serving_variant=chosen.name,
        )

    @property
    def handler_environment(self) -> dict[str, str]:
        """Variables for ``inference.py`` that differ from its defaults (none for most stacks)."""
        env: dict[str, str] = {}
        if self.probabilities:
            env[ENV_PROBABILITIES] = "true"
        if self.csv_header != CSV_HEADER_DEFAULT:
            env[ENV_CSV_HEADER] = self.csv_header
        return env

    @property
    def requirements_file(self) -> Path:
        """``requirements.txt`` of the handlers, which the container pip-installs at start."""
        return self.inference_dir / REQUIREMENTS_FILE
