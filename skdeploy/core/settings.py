"""Per-stack settings: read once, validated all at once, frozen.

The Pulumi program and the ``skdeploy`` command line both end in :func:`parse_settings`, so a
stack file means the same thing to ``pulumi up`` and to ``skdeploy check``/``serve``/``smoke``/
``plan``:

- :func:`skdeploy.infra.config.from_pulumi_config` reads the engine's configuration
  (``pulumi up``, ``pulumi preview``, and the mocks in the tests), the only code that touches
  ``pulumi.Config``; this module imports no Pulumi;
- :func:`load_stack_settings` reads ``stacks/Pulumi.<stack>.yaml`` (plus the ``config:`` defaults
  of ``Pulumi.yaml``) directly, for commands that run without the Pulumi CLI.

Validation collects every problem and raises one :class:`SettingsError` that lists them all,
before any resource is declared, so a bad stack file never half-deploys.
"""

from __future__ import annotations

import difflib
import functools
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

import yaml

from skdeploy.core.constants import (
    CONFIG_NAMESPACE,
    CSV_HEADER_CHOICES,
    CSV_HEADER_DEFAULT,
    DEFAULT_INSTANCE_TYPE,
    DEFAULT_VARIANT,
    ENV_CSV_HEADER,
    ENV_PROBABILITIES,
    PROGRAM,
    REQUIREMENTS_FILE,
)
from skdeploy.core.frameworks import DEFAULT_FRAMEWORK_VERSION, FRAMEWORKS, Framework
from skdeploy.core.pickle.inspect import InspectionLimits
from skdeploy.core.trusted import module_name_problem

REGION_KEY: Final = "aws:region"
SECRET: Final = "[secret]"  # noqa: S105 - the mask shown in place of a secret value

#: SageMaker's real-time hosting instance types, as data: where they come from and when is
#: recorded in the file (botocore's ``ProductionVariantInstanceType`` enum).
INSTANCE_TYPES_FILE: Final = Path(__file__).with_name("instance_types.json")
_ENDPOINT_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
_REGION = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$")
_IMAGE_URI = re.compile(
    r"^\d{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(\.cn)?/[a-z0-9][a-z0-9._/-]*"
    r"(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}|@sha256:[0-9a-f]{64})$"
)
_MODEL_FILE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


#: Highest value a stack may give each ``pickleLimits`` member (InspectionLimits field names):
#: far above any real model, low enough that a typo cannot switch a bound off.
PICKLE_LIMIT_CEILINGS: Final[Mapping[str, int]] = MappingProxyType(
    {
        "max_stream_mb": 65_536,  # 64 GiB of decompressed pickle stream
        "max_opcodes": 2_000_000_000,
        "max_values": 500_000_000,
        "max_nesting": 10_000,
    }
)


def _pickle_limits_rule() -> str:
    """The settings-table rule of ``pickleLimits``, from InspectionLimits' keys and defaults."""
    defaults = InspectionLimits()
    members = ", ".join(
        f"{key}: 1-{PICKLE_LIMIT_CEILINGS[name]} ({getattr(defaults, name)})"
        for name, key in InspectionLimits.SETTING_KEYS.items()
    )
    return (
        f"`{{{members}}}`: bounds on the pickle inspection of the stack's model files "
        "(decompressed stream in MB, opcodes walked, values held at once, nesting); raise one "
        "when a refusal names it"
    )


@dataclass(frozen=True)
class SettingSpec:
    """One ``skdeploy:`` key: its type, default and rule, as the README's settings table shows."""

    key: str
    type: str
    default: str
    rule: str


#: Every key of the ``skdeploy:`` namespace. The README's table is written from this list.
SETTINGS: Final[tuple[SettingSpec, ...]] = (
    SettingSpec("modelDir", "path", "`model`", "a directory, relative to the project"),
    SettingSpec("inferenceDir", "path", "`inference`", "a directory holding `inference.py`"),
    SettingSpec(
        "frameworkVersion",
        "string",
        f"`{DEFAULT_FRAMEWORK_VERSION}`",
        "one of " + ", ".join(f"`{v}`" for v in FRAMEWORKS),
    ),
    SettingSpec(
        "instanceType",
        "string",
        f"`{DEFAULT_INSTANCE_TYPE}`",
        "a SageMaker real-time instance type listed in `skdeploy/core/instance_types.json` "
        "(botocore's `ProductionVariantInstanceType`); also for variants and shadow",
    ),
    SettingSpec("instanceCount", "integer", "`1`", "1 to 100 instances"),
    SettingSpec(
        "endpointName",
        "string",
        "`skdeploy-<stack>`",
        "1-63 letters, digits and hyphens; stable across updates",
    ),
    SettingSpec(
        "networkIsolation",
        "boolean",
        "on, unless a `requirements.txt` is in the handlers of any variant (`inference/` by "
        "default) or the stack is serverless",
        "cannot be on with a `requirements.txt` (the container pip-installs it at start)",
    ),
    SettingSpec(
        "imageUri",
        "string",
        "resolved per region",
        "an ECR image URI; overrides the prebuilt scikit-learn image",
    ),
    SettingSpec(
        "modelFiles",
        "list of strings",
        "the `*.joblib` files of `modelDir`",
        "file names inside `modelDir`, at least one",
    ),
    SettingSpec(
        "allowVersionSkew",
        "boolean",
        "`false`",
        "`true` turns a scikit-learn version mismatch between pickle and container into a warning",
    ),
    SettingSpec(
        "serverless",
        "map",
        "off (instances)",
        "`{memoryMb: 1024-6144 in steps of 1024 (2048), maxConcurrency: 1-200 (5), "
        "provisionedConcurrency: 1-maxConcurrency (none)}`; excludes autoscaling, dataCapture, "
        "vpc, networkIsolation and canary/linear deployment",
    ),
    SettingSpec(
        "autoscaling",
        "map",
        "off",
        "`{min: >= 1, max: >= min and <= 100, targetInvocationsPerInstance: > 0 (100), "
        "scaleInCooldown: seconds (300), scaleOutCooldown: seconds (60)}`; instances only",
    ),
    SettingSpec(
        "deployment",
        "map",
        "off (SageMaker's default update)",
        "`{strategy: all-at-once, canary or linear, canaryPercent: 1-100 (10), "
        "linearStepPercent: 1-100 (20), waitSeconds: 0-3600 (300), terminationWaitSeconds: 0-3600 "
        "(0), maxExecutionSeconds: 600-14400 (3600), errorThreshold: 5XX errors a minute (5), "
        "latencyThresholdMs: average model latency (1000), alarmTopicArn: SNS topic (none)}`: "
        "blue/green with auto-rollback on two alarms",
    ),
    SettingSpec(
        "dataCapture",
        "map",
        "off",
        "`{samplingPercent: 1-100 (100), prefix: key prefix (datacapture), captureContent: "
        "both, input or output (both), bucket: a bucket name (the artifact bucket)}`; "
        "instances only",
    ),
    SettingSpec(
        "kmsKeyArn",
        "string",
        "none (AES256)",
        "a KMS key ARN: encrypts the artifact bucket, endpoint storage, captures and logs",
    ),
    SettingSpec(
        "vpc",
        "map",
        "none",
        "`{subnetIds: [...], securityGroupIds: [...]}`, both non-empty; instances only",
    ),
    SettingSpec(
        "startupHealthCheckTimeoutSeconds",
        "integer",
        "SageMaker's (240)",
        "60-3600 seconds; instances only",
    ),
    SettingSpec(
        "modelDownloadTimeoutSeconds",
        "integer",
        "SageMaker's",
        "60-3600 seconds; instances only",
    ),
    SettingSpec(
        "logRetentionDays",
        "integer",
        "`30`",
        "a CloudWatch Logs retention: 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, "
        "731, 1096, 1827, 2192, 2557, 2922, 3288 or 3653",
    ),
    SettingSpec(
        "protect",
        "boolean",
        "`false`",
        "`true` protects the endpoint and the bucket from `pulumi destroy` (and retains them)",
    ),
    SettingSpec(
        "allowEndpointReplacement",
        "boolean",
        "`false`",
        "`true` accepts a new endpoint (downtime) when switching between serverless and instances",
    ),
    SettingSpec(
        "productionOverrides",
        "list of strings",
        "none: a production stack needs all three",
        "requirements a production stack (named `prod*`, as the policy pack's rule, or tagged "
        "`environment: prod` or `production`) goes without, knowingly: `protect` waives "
        "`protect: true`, `deployment` waives a `deployment` map (blue/green updates that roll "
        "back on alarms), `autoscaling` waives an `autoscaling` map; a production stack missing "
        "one that is not listed here is refused; no effect on other stacks",
    ),
    SettingSpec(
        "variants",
        "list of maps",
        "one variant `AllTraffic` from the keys above",
        "`[{name, modelDir, inferenceDir, modelFiles, weight (1), instanceType, instanceCount}]`: "
        "several models behind one endpoint, traffic split by weight (not all zero); a variant's "
        "`modelDir` and `inferenceDir` default to `model` and `inference`, its instance keys to "
        "the top-level ones; instances only",
    ),
    SettingSpec(
        "shadow",
        "map",
        "none",
        "`{name, modelDir, inferenceDir, modelFiles, instanceType, instanceCount}`: a shadow "
        "variant that receives a copy of the traffic; its answers are not returned",
    ),
    SettingSpec(
        "api",
        "map",
        "off",
        "`{enabled: true, auth: iam or none (iam), throttle: {rate: requests/s (10), burst: "
        "(20)}}`: an HTTPS `POST /predict` in front of the endpoint (API Gateway + Lambda)",
    ),
    SettingSpec(
        "pickleLimits",
        "map",
        "the inspector's defaults",
        _pickle_limits_rule(),
    ),
    SettingSpec(
        "trustedModules",
        "list of strings",
        "none",
        "modules the stack ships in its handler folders (`inference/my_features.py` or a package "
        "`inference/featurelib/`) whose top-level classes the model's pickle may name (custom "
        "transformers); functions and imported names stay refused; not the standard library or "
        "the container's packages; tagged on the Model (`skdeploy:trusted-modules`) so a plan "
        "shows it",
    ),
    SettingSpec(
        "probabilities",
        "boolean",
        "`false`",
        "`true` answers class probabilities by default (classifiers with `predict_proba`; a "
        "request can still say `probabilities=false`); the Model's `SKDEPLOY_PROBABILITIES`",
    ),
    SettingSpec(
        "csvHeader",
        "string",
        "`auto`",
        "`auto`, `present` or `absent`: whether a CSV body's first line names the columns, for "
        "models fitted on a DataFrame (`auto`: when it holds exactly the model's feature names); "
        "the Model's `SKDEPLOY_CSV_HEADER`",
    ),
    SettingSpec(
        "tags",
        "map of strings",
        "`{}`",
        "keys 1-128 characters, values up to 256, no `aws:` prefix; added to every resource",
    ),
)

_KNOWN_KEYS: Final = frozenset(s.key for s in SETTINGS)


class SettingsError(ValueError):
    """Every problem found in one stack's settings, one per line."""

    def __init__(self, stack: str, problems: list[str]) -> None:
        self.stack = stack
        self.problems = list(problems)
        listing = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"stack {stack!r} has {len(self.problems)} invalid setting(s):\n{listing}")


LOG_RETENTION_DAYS: Final = (
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)
DEPLOYMENT_STRATEGIES: Final = ("all-at-once", "canary", "linear")
CAPTURE_CONTENT: Final = ("both", "input", "output")


@dataclass(frozen=True)
class ServerlessSettings:
    """A serverless variant: memory in MB, concurrent invocations, optional provisioned ones."""

    memory_mb: int = 2048
    max_concurrency: int = 5
    provisioned_concurrency: int | None = None


@dataclass(frozen=True)
class AutoscalingSettings:
    """Target tracking on invocations per instance, between ``min`` and ``max`` instances."""

    min: int
    max: int
    target_invocations_per_instance: float = 100.0
    scale_in_cooldown: int = 300
    scale_out_cooldown: int = 60


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


@dataclass(frozen=True)
class DataCaptureSettings:
    """Requests and/or responses written to S3 (``bucket`` None: the artifact bucket)."""

    sampling_percent: int = 100
    prefix: str = "datacapture"
    capture_content: str = "both"
    bucket: str | None = None


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


@dataclass(frozen=True)
class ApiSettings:
    """An HTTPS front door: ``POST /predict`` through API Gateway and a Lambda function."""

    auth: str = "iam"
    throttle_rate: float = 10.0
    throttle_burst: int = 20


@dataclass(frozen=True)
class VpcSettings:
    """Subnets and security groups the model's containers run in."""

    subnet_ids: tuple[str, ...]
    security_group_ids: tuple[str, ...]


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


class _Problems:
    """Collects problems while values are coerced, so that all of them are reported at once."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, key: str, value: object, rule: str) -> None:
        self.items.append(f"{CONFIG_NAMESPACE}:{key} = {_shown(value)}: {rule}")


#: Longest value echoed in a problem: a setting is short; a huge one is cut, not printed whole.
_SHOWN_CHARS: Final = 200


def _shown(value: object) -> str:
    if isinstance(value, str):
        text = value
    else:
        try:
            text = json.dumps(value, default=str)
        except (TypeError, ValueError):  # keys JSON cannot spell (dates, ...)
            text = repr(value)
    return text if len(text) <= _SHOWN_CHARS else text[:_SHOWN_CHARS] + "..."


@functools.cache
def instance_types() -> tuple[str, ...]:
    """SageMaker's real-time hosting instance types (``skdeploy/core/instance_types.json``)."""
    data = json.loads(INSTANCE_TYPES_FILE.read_text(encoding="utf-8"))
    return tuple(data["instanceTypes"])


def _instance_type_rule(value: object) -> str | None:
    """Why ``value`` is not an instance type SageMaker hosts (None when it is one)."""
    if not isinstance(value, str):
        return "must be a string such as ml.m5.large"
    known = instance_types()
    if value in known:
        return None
    rule = "not a SageMaker real-time instance type"
    if not value.startswith("ml."):
        rule = "must start with `ml.`, e.g. ml.m5.large: " + rule
    family = value.rsplit(".", 1)[0]
    close = difflib.get_close_matches(value, known, n=3, cutoff=0.75)
    sizes = sorted((t for t in known if t.rsplit(".", 1)[0] == family), key=_size_order)
    close += [t for t in sizes if t not in close]
    listed = f"skdeploy/{INSTANCE_TYPES_FILE.name} lists them all"
    if close:
        return f"{rule}; did you mean {', '.join(close[:8])}? ({listed})"
    return f"{rule}, e.g. ml.m5.large ({listed})"


def _size_order(instance_type: str) -> tuple[int, str]:
    """medium, large, xlarge, 2xlarge, ..., 48xlarge: the order sizes grow in."""
    size = instance_type.rsplit(".", 1)[-1]
    steps = {"medium": 0, "large": 1, "xlarge": 2}
    if size in steps:
        return steps[size], size
    times = re.match(r"\d+", size)
    return (2 + int(times.group()), size) if times else (10_000, size)


def _as_bool(value: object) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return None


def _as_int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"[+-]?\d+", value.strip()):
        return int(value)
    return None


def _as_object(value: object) -> object:
    """Pulumi hands structured values to programs as JSON text; YAML hands them as objects."""
    if isinstance(value, str) and value[:1] in ("{", "["):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def parse_settings(
    raw: Mapping[str, object], *, stack: str, region: object, project_dir: Path
) -> EndpointSettings:
    """Validate raw ``skdeploy:`` values (keys without the namespace) into settings.

    Raises :class:`SettingsError` listing every problem found.
    """
    problems = _Problems()
    project_dir = project_dir.resolve()

    for key in sorted(set(raw) - _KNOWN_KEYS):
        problems.add(key, raw[key], "unknown key; known keys: " + ", ".join(sorted(_KNOWN_KEYS)))
    for key in sorted(k for k, v in raw.items() if v == SECRET and k in _KNOWN_KEYS):
        problems.add(key, SECRET, "must not be a secret (skdeploy settings are not sensitive)")

    def get(key: str, default: object = None) -> object:
        value = raw.get(key, default)
        return default if value == SECRET else value

    region_value = "" if region is None else region
    if not isinstance(region_value, str) or not _REGION.match(region_value):
        problems.items.append(
            f"{REGION_KEY} = {region_value!s}: required; an AWS region such as us-east-1 "
            f"(set it with `pulumi config set aws:region <region> -s {stack}`)"
        )
        region_value = str(region_value)

    model_dir = _directory(problems, "modelDir", get("modelDir", "model"), project_dir)
    inference_dir = _directory(
        problems, "inferenceDir", get("inferenceDir", "inference"), project_dir
    )
    if inference_dir is not None and not (inference_dir / PROGRAM).is_file():
        problems.add("inferenceDir", get("inferenceDir", "inference"), f"has no {PROGRAM}")

    framework_version = get("frameworkVersion", DEFAULT_FRAMEWORK_VERSION)
    if framework_version not in FRAMEWORKS:
        problems.add(
            "frameworkVersion",
            framework_version,
            "unknown framework version; supported: " + ", ".join(FRAMEWORKS),
        )

    instance_type = get("instanceType", DEFAULT_INSTANCE_TYPE)
    instance_type_rule = _instance_type_rule(instance_type)
    if instance_type_rule is not None:
        problems.add("instanceType", instance_type, instance_type_rule)

    count_raw = get("instanceCount", 1)
    instance_count = _as_int(count_raw)
    if instance_count is None or not 1 <= instance_count <= 100:
        problems.add("instanceCount", count_raw, "must be a whole number from 1 to 100")

    endpoint_name = get("endpointName", f"skdeploy-{stack}")
    if (
        not isinstance(endpoint_name, str)
        or not _ENDPOINT_NAME.match(endpoint_name)
        or len(endpoint_name) > 63
    ):
        problems.add(
            "endpointName",
            endpoint_name,
            "must be 1-63 letters, digits or hyphens, starting with a letter or digit",
        )

    image_uri = get("imageUri")
    if image_uri is not None and (
        not isinstance(image_uri, str) or not _IMAGE_URI.match(image_uri)
    ):
        problems.add(
            "imageUri",
            image_uri,
            "must be an ECR image URI: <account>.dkr.ecr.<region>.amazonaws.com/<repo>:<tag>",
        )

    skew_raw = get("allowVersionSkew", False)
    allow_version_skew = _as_bool(skew_raw)
    if allow_version_skew is None:
        problems.add("allowVersionSkew", skew_raw, "must be true or false")

    model_files = _model_files(problems, get("modelFiles"), model_dir)
    tags = _tags(problems, get("tags", {}))
    variants, shadow = _variants(
        problems,
        get,
        project_dir,
        instance_type=instance_type
        if isinstance(instance_type, str) and instance_type_rule is None
        else DEFAULT_INSTANCE_TYPE,
        instance_count=instance_count or 1,
    )
    # Every model the endpoint runs (the variants, or the top-level one, and the shadow) shares
    # one isolation setting; a requirements.txt in any of their handler folders needs network.
    served_dirs: list[Path | None] = [v.inference_dir for v in variants] or [inference_dir]
    served_dirs += [shadow.inference_dir] if shadow is not None else []
    with_requirements = [
        d for d in dict.fromkeys(served_dirs) if d is not None and (d / REQUIREMENTS_FILE).is_file()
    ]
    isolation_raw = get("networkIsolation")
    serverless_requested = raw.get("serverless") not in (None, SECRET)
    network_isolation: bool | None = not with_requirements and not serverless_requested
    if isolation_raw is not None:
        network_isolation = _as_bool(isolation_raw)
        if network_isolation is None:
            problems.add("networkIsolation", isolation_raw, "must be true or false")
        elif network_isolation and with_requirements:
            folders = ", ".join(relative_to_project(d, project_dir) for d in with_requirements)
            problems.add(
                "networkIsolation",
                isolation_raw,
                f"cannot be true while {REQUIREMENTS_FILE} exists in {folders}: the container "
                "pip-installs it at every start, which fails without network access",
            )
    production = _production(
        problems, get, network_isolation=isolation_raw is not None and bool(network_isolation)
    )
    pickle_limits = _pickle_limits(problems, get("pickleLimits"))
    trusted_modules = _trusted_modules(problems, get("trustedModules"))
    probabilities_raw = get("probabilities", False)
    probabilities = _as_bool(probabilities_raw)
    if probabilities is None:
        problems.add("probabilities", probabilities_raw, "must be true or false")
    csv_header = get("csvHeader", CSV_HEADER_DEFAULT)
    if csv_header not in CSV_HEADER_CHOICES:
        problems.add("csvHeader", csv_header, "must be one of " + ", ".join(CSV_HEADER_CHOICES))
    overrides = _production_overrides(problems, get("productionOverrides"))
    _production_requirements(problems, get, stack=stack, tags=tags, overrides=overrides)

    if problems.items:
        raise SettingsError(stack, problems.items)
    # Every branch above that leaves one of these unset has added a problem.
    assert model_dir is not None
    assert inference_dir is not None
    assert isinstance(framework_version, str)
    assert isinstance(instance_type, str)
    assert isinstance(endpoint_name, str)
    assert instance_count is not None
    assert network_isolation is not None
    return EndpointSettings(
        stack=stack,
        project_dir=project_dir,
        region=region_value,
        model_dir=model_dir,
        inference_dir=inference_dir,
        framework_version=framework_version,
        instance_type=instance_type,
        instance_count=instance_count,
        endpoint_name=endpoint_name,
        network_isolation=network_isolation,
        image_uri=image_uri if isinstance(image_uri, str) else None,
        model_files=model_files,
        tags=tags,
        allow_version_skew=bool(allow_version_skew),
        variants=variants,
        shadow=shadow,
        production_overrides=overrides,
        pickle_limits=pickle_limits,
        trusted_modules=trusted_modules,
        probabilities=bool(probabilities),
        csv_header=str(csv_header),
        serverless=production.serverless,
        autoscaling=production.autoscaling,
        deployment=production.deployment,
        data_capture=production.data_capture,
        kms_key_arn=production.kms_key_arn,
        vpc=production.vpc,
        startup_health_check_timeout_seconds=production.startup_health_check_timeout_seconds,
        model_download_timeout_seconds=production.model_download_timeout_seconds,
        log_retention_days=production.log_retention_days,
        protect=production.protect,
        allow_endpoint_replacement=production.allow_endpoint_replacement,
        api=production.api,
    )


def _trusted_modules(problems: _Problems, value: object) -> tuple[str, ...]:
    """``trustedModules``: distinct module names (whether they ship is checked by ``check``)."""
    if value is None:
        return ()
    names = _as_str_list(value)
    if names is None:
        problems.add("trustedModules", value, "must be a list of module names")
        return ()
    for name in names:
        reason = module_name_problem(name)
        if reason is not None:
            problems.add("trustedModules", name, reason)
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        problems.add("trustedModules", value, "lists " + ", ".join(duplicates) + " twice")
    return names


def _pickle_limits(problems: _Problems, value: object) -> InspectionLimits:
    """``pickleLimits``: each member a whole number from 1 to its ceiling; defaults otherwise."""
    defaults = InspectionLimits()
    parsed = _map(
        problems,
        "pickleLimits",
        value,
        {
            key: _int_field(getattr(defaults, name), 1, PICKLE_LIMIT_CEILINGS[name])
            for name, key in InspectionLimits.SETTING_KEYS.items()
        },
    )
    if parsed is None:
        return defaults
    return InspectionLimits(
        **{
            name: getattr(defaults, name) if parsed[key] is None else parsed[key]
            for name, key in InspectionLimits.SETTING_KEYS.items()
        }
    )


#: What a production stack must have, by the name ``productionOverrides`` waives it with, and
#: what goes wrong without it.
PRODUCTION_REQUIREMENTS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "protect": f"{CONFIG_NAMESPACE}:protect is not true (`pulumi destroy` would delete the "
        "endpoint and its bucket)",
        "deployment": f"{CONFIG_NAMESPACE}:deployment is not set (an update is not blue/green and "
        "does not roll back on errors or latency)",
        "autoscaling": f"{CONFIG_NAMESPACE}:autoscaling is not set (capacity does not follow load "
        "and a lost instance is not replaced by scaling)",
    }
)
#: Values of the ``environment`` tag that make a stack a production one, whatever its name.
PRODUCTION_ENVIRONMENTS: Final = ("prod", "production")


def production_reason(stack: str, tags: Mapping[str, str]) -> str | None:
    """Why ``stack`` is a production stack, or None.

    A stack named ``prod...`` (the policy pack's prod rule uses the same test) or tagged
    ``environment: prod``/``production`` (any case) is one.
    """
    if stack.lower().startswith("prod"):
        return f"stack name {stack!r}"
    for key, value in tags.items():
        if key.lower() == "environment" and value.lower() in PRODUCTION_ENVIRONMENTS:
            return f"tag {key}: {value}"
    return None


def _production_overrides(problems: _Problems, value: object) -> frozenset[str]:
    value = _as_object(value)
    if value is None:
        return frozenset()
    known = ", ".join(PRODUCTION_REQUIREMENTS)
    if not isinstance(value, list):
        problems.add(
            "productionOverrides", value, f"must be a list of requirements to waive: {known}"
        )
        return frozenset()
    overrides: set[str] = set()
    for item in value:
        if not isinstance(item, str) or item not in PRODUCTION_REQUIREMENTS:
            problems.add(
                "productionOverrides", value, f"unknown requirement {item!r}; known: {known}"
            )
        elif item in overrides:
            problems.add("productionOverrides", value, f"lists {item} twice")
        else:
            overrides.add(item)
    return frozenset(overrides)


def _production_requirements(
    problems: _Problems,
    get: Callable[..., object],
    *,
    stack: str,
    tags: Mapping[str, str],
    overrides: frozenset[str],
) -> None:
    """A production stack has protect, deployment guardrails and autoscaling, or waives them.

    Presence is judged on the raw values: a present but invalid ``deployment`` is reported by
    its own rule, not again here as missing.
    """
    reason = production_reason(stack, tags)
    if reason is None:
        return
    present = {
        "protect": _as_bool(get("protect", False)) is True,
        "deployment": get("deployment") is not None,
        "autoscaling": get("autoscaling") is not None,
    }
    missing = [r for r in PRODUCTION_REQUIREMENTS if not present[r] and r not in overrides]
    if not missing:
        return
    lacks = "; ".join(PRODUCTION_REQUIREMENTS[r] for r in missing)
    problems.items.append(
        f"stack {stack!r} is a production stack ({reason}) and lacks {len(missing)} "
        f"safeguard(s): {lacks}. Set them, or waive each one knowingly by listing it in "
        f"{CONFIG_NAMESPACE}:productionOverrides (here: [{', '.join(missing)}])"
    )


_KMS_KEY = re.compile(r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[A-Za-z0-9-]+$")
_SNS_TOPIC = re.compile(r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_PREFIX = re.compile(r"^[A-Za-z0-9!_.*'()/-]{1,512}$")


@dataclass(frozen=True)
class _Field:
    """One member of a map setting: default, coercion, rule and the rule's wording."""

    default: object
    coerce: Callable[[object], object | None]
    ok: Callable[[Any], bool]
    rule: str


def _int_field(default: int | None, low: int, high: int, rule: str = "") -> _Field:
    return _Field(
        default, _as_int, lambda v: low <= v <= high, rule or f"a whole number {low}-{high}"
    )


def _map(
    problems: _Problems, key: str, value: object, fields: Mapping[str, _Field]
) -> dict[str, Any] | None:
    """Parse a map setting member by member; None when absent or invalid."""
    value = _as_object(value)
    if value is None:
        return None
    if not isinstance(value, dict):
        problems.add(key, value, "must be a map with keys " + ", ".join(fields))
        return None
    valid = True
    for unknown in sorted(set(value) - set(fields), key=str):
        problems.add(f"{key}.{unknown}", value[unknown], "unknown key; known: " + ", ".join(fields))
        valid = False
    parsed: dict[str, Any] = {}
    for name, spec in fields.items():
        raw = value.get(name, spec.default)
        if raw is None:
            parsed[name] = None
            continue
        coerced = spec.coerce(raw)
        if coerced is None or not spec.ok(coerced):
            problems.add(f"{key}.{name}", raw, spec.rule)
            valid = False
        parsed[name] = coerced
    return parsed if valid else None


def _as_float(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _as_object_map(value: object) -> dict[str, object] | None:
    value = _as_object(value)
    return value if isinstance(value, dict) else None


def _as_str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _as_str_list(value: object) -> tuple[str, ...] | None:
    value = _as_object(value)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    return None


@dataclass(frozen=True)
class _Production:
    """The production keys of a stack, as :func:`_production` parsed them (typed for mypy)."""

    serverless: ServerlessSettings | None
    autoscaling: AutoscalingSettings | None
    deployment: DeploymentSettings | None
    data_capture: DataCaptureSettings | None
    kms_key_arn: str | None
    vpc: VpcSettings | None
    startup_health_check_timeout_seconds: int | None
    model_download_timeout_seconds: int | None
    log_retention_days: int
    protect: bool
    allow_endpoint_replacement: bool
    api: ApiSettings | None


def _production(
    problems: _Problems, get: Callable[..., object], *, network_isolation: bool
) -> _Production:
    """The production keys (serverless, autoscaling, guardrails, capture, security, ...)."""
    serverless = _map(
        problems,
        "serverless",
        get("serverless"),
        {
            "memoryMb": _Field(
                2048, _as_int, lambda v: v in range(1024, 6145, 1024), "1024-6144 in steps of 1024"
            ),
            "maxConcurrency": _int_field(5, 1, 200),
            "provisionedConcurrency": _int_field(None, 1, 200),
        },
    )
    autoscaling = _map(
        problems,
        "autoscaling",
        get("autoscaling"),
        {
            "min": _int_field(None, 1, 100),
            "max": _int_field(None, 1, 100),
            "targetInvocationsPerInstance": _Field(
                100.0, _as_float, lambda v: v > 0, "invocations per instance per minute, > 0"
            ),
            "scaleInCooldown": _int_field(300, 0, 86400, "seconds, 0-86400"),
            "scaleOutCooldown": _int_field(60, 0, 86400, "seconds, 0-86400"),
        },
    )
    deployment = _map(
        problems,
        "deployment",
        get("deployment"),
        {
            "strategy": _Field(
                "all-at-once",
                _as_str,
                lambda v: v in DEPLOYMENT_STRATEGIES,
                "one of " + ", ".join(DEPLOYMENT_STRATEGIES),
            ),
            "canaryPercent": _int_field(10, 1, 100),
            "linearStepPercent": _int_field(20, 1, 100),
            "waitSeconds": _int_field(300, 0, 3600),
            "terminationWaitSeconds": _int_field(0, 0, 3600),
            "maxExecutionSeconds": _int_field(3600, 600, 14400),
            "errorThreshold": _int_field(5, 1, 1_000_000, "5XX errors a minute, >= 1"),
            "latencyThresholdMs": _int_field(1000, 1, 60_000, "milliseconds, 1-60000"),
            "alarmTopicArn": _Field(
                None, _as_str, lambda v: bool(_SNS_TOPIC.match(v)), "an SNS topic ARN"
            ),
        },
    )
    capture = _map(
        problems,
        "dataCapture",
        get("dataCapture"),
        {
            "samplingPercent": _int_field(100, 1, 100),
            "prefix": _Field(
                "datacapture", _as_str, lambda v: bool(_PREFIX.match(v)), "an S3 key prefix"
            ),
            "captureContent": _Field(
                "both", _as_str, lambda v: v in CAPTURE_CONTENT, "one of both, input, output"
            ),
            "bucket": _Field(None, _as_str, lambda v: bool(_BUCKET.match(v)), "an S3 bucket name"),
        },
    )
    vpc = _map(
        problems,
        "vpc",
        get("vpc"),
        {
            "subnetIds": _Field(
                None, _as_str_list, lambda v: len(v) > 0, "a non-empty list of subnet ids"
            ),
            "securityGroupIds": _Field(
                None, _as_str_list, lambda v: len(v) > 0, "a non-empty list of security group ids"
            ),
        },
    )
    if vpc is not None:
        for member in ("subnetIds", "securityGroupIds"):
            if vpc[member] is None:
                problems.add(
                    f"vpc.{member}", "(missing)", "a VPC needs subnets and security groups"
                )
                vpc = None
                break

    kms_raw = get("kmsKeyArn")
    if kms_raw is not None and (not isinstance(kms_raw, str) or not _KMS_KEY.match(kms_raw)):
        problems.add(
            "kmsKeyArn", kms_raw, "must be a KMS key ARN: arn:aws:kms:<region>:<acct>:key/<id>"
        )
    timeouts: dict[str, int | None] = {}
    for key in ("startupHealthCheckTimeoutSeconds", "modelDownloadTimeoutSeconds"):
        raw = get(key)
        timeouts[key] = None if raw is None else _as_int(raw)
        if raw is not None and (timeouts[key] is None or not 60 <= (timeouts[key] or 0) <= 3600):
            problems.add(key, raw, "must be 60-3600 seconds")
    retention_raw = get("logRetentionDays", 30)
    retention = _as_int(retention_raw)
    if retention not in LOG_RETENTION_DAYS:
        problems.add(
            "logRetentionDays",
            retention_raw,
            "must be one of " + ", ".join(map(str, LOG_RETENTION_DAYS)),
        )
    flags: dict[str, bool] = {}
    for key in ("protect", "allowEndpointReplacement"):
        raw = get(key, False)
        flag = _as_bool(raw)
        if flag is None:
            problems.add(key, raw, "must be true or false")
        flags[key] = bool(flag)

    api = _map(
        problems,
        "api",
        get("api"),
        {
            "enabled": _Field(True, _as_bool, lambda v: True, "true or false"),
            "auth": _Field(
                "iam", _as_str, lambda v: v in ("iam", "none"), "iam, or none (explicitly public)"
            ),
            "throttle": _Field({}, _as_object_map, lambda v: True, "a map {rate, burst}"),
        },
    )
    api_settings: ApiSettings | None = None
    if api is not None and api["enabled"]:
        throttle = _map(
            problems,
            "api.throttle",
            api["throttle"] or {},
            {
                "rate": _Field(10.0, _as_float, lambda v: 0 < v <= 10000, "requests/s, 0-10000"),
                "burst": _int_field(20, 1, 5000),
            },
        )
        if throttle is not None:
            api_settings = ApiSettings(api["auth"], throttle["rate"], throttle["burst"])

    if autoscaling is not None and autoscaling["min"] is None:
        problems.add("autoscaling.min", "(missing)", "autoscaling needs min and max")
    if autoscaling is not None and autoscaling["max"] is None:
        problems.add("autoscaling.max", "(missing)", "autoscaling needs min and max")
    if (
        autoscaling is not None
        and autoscaling["min"] is not None
        and autoscaling["max"] is not None
        and autoscaling["min"] > autoscaling["max"]
    ):
        problems.add("autoscaling", get("autoscaling"), "min must not exceed max")
    if (
        serverless is not None
        and serverless["provisionedConcurrency"] is not None
        and serverless["provisionedConcurrency"] > serverless["maxConcurrency"]
    ):
        problems.add(
            "serverless.provisionedConcurrency",
            serverless["provisionedConcurrency"],
            "must not exceed maxConcurrency",
        )
    if get("serverless") is not None:
        reason = "AWS does not support it on serverless endpoints"
        for key, present in (
            ("autoscaling", get("autoscaling") is not None),
            ("variants", get("variants") is not None),
            ("shadow", get("shadow") is not None),
            ("dataCapture", get("dataCapture") is not None),
            ("vpc", get("vpc") is not None),
            ("networkIsolation", network_isolation),
            (
                "startupHealthCheckTimeoutSeconds",
                get("startupHealthCheckTimeoutSeconds") is not None,
            ),
            ("modelDownloadTimeoutSeconds", get("modelDownloadTimeoutSeconds") is not None),
        ):
            if present:
                problems.add(key, get(key), f"cannot be combined with serverless: {reason}")
        if deployment is not None and deployment["strategy"] != "all-at-once":
            problems.add(
                "deployment.strategy",
                deployment["strategy"],
                "serverless endpoints take all-at-once blue/green only: canary and linear "
                "traffic shifting need instance capacity",
            )

    return _Production(
        serverless=None
        if serverless is None
        else ServerlessSettings(
            serverless["memoryMb"],
            serverless["maxConcurrency"],
            serverless["provisionedConcurrency"],
        ),
        autoscaling=None
        if autoscaling is None or autoscaling["min"] is None or autoscaling["max"] is None
        else AutoscalingSettings(
            autoscaling["min"],
            autoscaling["max"],
            autoscaling["targetInvocationsPerInstance"],
            autoscaling["scaleInCooldown"],
            autoscaling["scaleOutCooldown"],
        ),
        deployment=None
        if deployment is None
        else DeploymentSettings(
            deployment["strategy"],
            deployment["canaryPercent"],
            deployment["linearStepPercent"],
            deployment["waitSeconds"],
            deployment["terminationWaitSeconds"],
            deployment["maxExecutionSeconds"],
            deployment["errorThreshold"],
            deployment["latencyThresholdMs"],
            deployment["alarmTopicArn"],
        ),
        data_capture=None
        if capture is None
        else DataCaptureSettings(
            capture["samplingPercent"],
            capture["prefix"],
            capture["captureContent"],
            capture["bucket"],
        ),
        kms_key_arn=kms_raw if isinstance(kms_raw, str) else None,
        vpc=None if vpc is None else VpcSettings(vpc["subnetIds"], vpc["securityGroupIds"]),
        startup_health_check_timeout_seconds=timeouts["startupHealthCheckTimeoutSeconds"],
        model_download_timeout_seconds=timeouts["modelDownloadTimeoutSeconds"],
        log_retention_days=retention if retention is not None else 30,
        protect=flags["protect"],
        allow_endpoint_replacement=flags["allowEndpointReplacement"],
        api=api_settings,
    )


def _variant(
    problems: _Problems,
    key: str,
    value: object,
    project_dir: Path,
    *,
    instance_type: str,
    instance_count: int,
    shadow: bool,
) -> VariantSettings | None:
    fields = {
        "name": _Field(
            None,
            _as_str,
            lambda v: bool(_ENDPOINT_NAME.match(v)) and len(v) <= 63,
            "1-63 letters, digits, hyphens",
        ),
        "modelDir": _Field("model", _as_str, lambda v: bool(v), "a directory path"),
        "inferenceDir": _Field("inference", _as_str, lambda v: bool(v), "a directory path"),
        "modelFiles": _Field(None, _as_str_list, lambda v: len(v) > 0, "a non-empty list"),
        # A string here; whether SageMaker hosts it is checked below, with suggestions.
        "instanceType": _Field(
            instance_type, _as_str, lambda v: True, "a string such as ml.m5.large"
        ),
        "instanceCount": _int_field(instance_count, 1, 100),
    }
    if not shadow:
        fields["weight"] = _Field(1.0, _as_float, lambda v: v >= 0, "a weight >= 0")
    parsed = _map(problems, key, value, fields)
    if parsed is None:
        return None
    type_rule = _instance_type_rule(parsed["instanceType"])
    if type_rule is not None:
        problems.add(f"{key}.instanceType", parsed["instanceType"], type_rule)
        return None
    if parsed["name"] is None:
        problems.add(f"{key}.name", "(missing)", "every variant needs a name")
        return None
    model_dir = _directory(problems, f"{key}.modelDir", parsed["modelDir"], project_dir)
    inference_dir = _directory(problems, f"{key}.inferenceDir", parsed["inferenceDir"], project_dir)
    if inference_dir is not None and not (inference_dir / PROGRAM).is_file():
        problems.add(f"{key}.inferenceDir", parsed["inferenceDir"], f"has no {PROGRAM}")
    files = _model_files(
        problems,
        list(parsed["modelFiles"]) if parsed["modelFiles"] else None,
        model_dir,
        f"{key}.modelFiles",
    )
    if model_dir is None or inference_dir is None:
        return None
    return VariantSettings(
        parsed["name"],
        model_dir,
        inference_dir,
        files,
        float(parsed.get("weight") or 0.0) if not shadow else 0.0,
        parsed["instanceType"],
        parsed["instanceCount"],
    )


def _variants(
    problems: _Problems,
    get: Callable[..., object],
    project_dir: Path,
    *,
    instance_type: str,
    instance_count: int,
) -> tuple[tuple[VariantSettings, ...], VariantSettings | None]:
    """``variants`` and ``shadow``: several models behind one endpoint."""
    raw = _as_object(get("variants"))
    variants: list[VariantSettings] = []
    if raw is not None:
        if not isinstance(raw, list) or not raw:
            problems.add("variants", raw, "must be a non-empty list of variants")
        else:
            for index, item in enumerate(raw):
                parsed = _variant(
                    problems,
                    f"variants[{index}]",
                    item,
                    project_dir,
                    instance_type=instance_type,
                    instance_count=instance_count,
                    shadow=False,
                )
                if parsed is not None:
                    variants.append(parsed)
            names = [v.name for v in variants]
            if len(set(names)) != len(names):
                problems.add("variants", names, "variant names must be unique")
            if variants and len(variants) == len(raw) and not any(v.weight > 0 for v in variants):
                problems.add("variants", [v.weight for v in variants], "weights are all zero")
    shadow = None
    if get("shadow") is not None:
        shadow = _variant(
            problems,
            "shadow",
            get("shadow"),
            project_dir,
            instance_type=instance_type,
            instance_count=instance_count,
            shadow=True,
        )
        served = [v.name for v in variants] or [DEFAULT_VARIANT]
        if shadow is not None and shadow.name in served:
            problems.add("shadow.name", shadow.name, "must differ from the production variants")
    return tuple(variants), shadow


def relative_to_project(path: Path, project_dir: Path) -> str:
    """``path`` as a stack file spells it: relative to the project when it is inside it."""
    try:
        return str(path.relative_to(project_dir.resolve()))
    except ValueError:
        return str(path)


def _directory(problems: _Problems, key: str, value: object, project_dir: Path) -> Path | None:
    if not isinstance(value, str) or not value:
        problems.add(key, value, "must be a directory path")
        return None
    path = (project_dir / value).resolve()
    if not path.is_dir():
        problems.add(key, value, f"directory {path} does not exist")
        return None
    return path


def _model_files(
    problems: _Problems, value: object, model_dir: Path | None, key: str = "modelFiles"
) -> tuple[str, ...]:
    value = _as_object(value)
    if value is None:
        if model_dir is None:
            return ()
        found = tuple(sorted(p.name for p in model_dir.glob("*.joblib") if p.is_file()))
        if not found:
            problems.add(key, "(default)", f"no *.joblib file in {model_dir}")
        return found
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        problems.add(key, value, "must be a non-empty list of file names")
        return ()
    names: list[str] = value
    for name in names:
        if not _MODEL_FILE.match(name):
            problems.add(key, name, "must be a plain file name inside modelDir")
        elif model_dir is not None and not (model_dir / name).is_file():
            problems.add(key, name, f"file {model_dir / name} does not exist")
    if len(set(names)) != len(names):
        problems.add(key, value, "lists a file twice")
    return tuple(sorted(set(names)))


def _tags(problems: _Problems, value: object) -> dict[str, str]:
    value = _as_object(value)
    if not isinstance(value, dict):
        problems.add("tags", value, "must be a map of strings to strings")
        return {}
    tags: dict[str, str] = {}
    for key, tag_value in value.items():
        if not isinstance(key, str) or not 1 <= len(key) <= 128 or key.lower().startswith("aws:"):
            problems.add("tags", key, "tag keys are 1-128 characters and must not start with aws:")
        elif not isinstance(tag_value, str | int | float) or isinstance(tag_value, bool):
            problems.add("tags", {key: tag_value}, "tag values must be strings")
        elif len(str(tag_value)) > 256:
            problems.add("tags", key, "tag values are at most 256 characters")
        else:
            tags[key] = str(tag_value)
    return tags


# --- Sources ------------------------------------------------------------------------------------


def stack_file(project_dir: Path, stack: str) -> Path:
    """Where a stack's settings live (``stackConfigDir: stacks`` in Pulumi.yaml)."""
    return project_dir / "stacks" / f"Pulumi.{stack}.yaml"


def available_stacks(project_dir: Path) -> list[str]:
    """Stacks that have a settings file, e.g. ``["dev", "prod", "staging"]``."""
    return sorted(
        p.name[len("Pulumi.") : -len(".yaml")]
        for p in (project_dir / "stacks").glob("Pulumi.*.yaml")
    )


def read_stack_config(project_dir: Path, stack: str) -> dict[str, object]:
    """The merged ``config:`` of Pulumi.yaml (defaults) and the stack file, secrets masked.

    Values are returned as Pulumi's engine would hand them to the program: namespaced keys,
    structured values kept as objects. A ``secure:`` value becomes :data:`SECRET`: the CLI never
    needs (or decrypts) secrets. Both files are read by :func:`_load_yaml`'s rules (size, no
    aliases, bounded nesting, no duplicate keys); every problem of both is raised at once.
    """
    path = stack_file(project_dir, stack)
    if not path.is_file():
        known = ", ".join(available_stacks(project_dir)) or "none"
        raise SettingsError(stack, [f"no stack file {path} (stacks found: {known})"])
    problems: list[str] = []
    merged: dict[str, object] = {}
    project_file = project_dir / "Pulumi.yaml"
    if project_file.is_file():
        project = _config_section(project_file, _load_yaml(project_file, problems), problems)
        for key, decl in project.items():
            full_key = key if ":" in key else f"{CONFIG_NAMESPACE}:{key}"
            if isinstance(decl, dict) and ("default" in decl or "value" in decl):
                merged[full_key] = decl.get("value", decl.get("default"))
            elif not isinstance(decl, dict):
                merged[full_key] = decl
    for key, value in _config_section(path, _load_yaml(path, problems), problems).items():
        merged[key] = SECRET if isinstance(value, dict) and "secure" in value else value
    if problems:
        raise SettingsError(stack, problems)
    return merged


#: Largest Pulumi.yaml or stack file read: settings are a few kilobytes; more is refused unread.
MAX_SETTINGS_FILE_BYTES: Final = 1024 * 1024
#: Deepest nesting of YAML collections accepted (the deepest real setting nests 3 levels).
MAX_YAML_DEPTH: Final = 32


class _YamlRefused(yaml.YAMLError):
    """A construct the settings files do not accept (an alias, too deep a nesting)."""


class _SettingsLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` with bounds, for files anyone can change in a pull request.

    - Aliases (``*name``, including ``<<: *name``) are refused: a few lines of nested aliases
      expand into billions of values ("billion laughs") the moment anything walks them, and no
      setting needs them.
    - Collections nest at most :data:`MAX_YAML_DEPTH` deep (the composer recurses per level).
    - Duplicate keys of a mapping, at any level, are recorded with both lines instead of the
      last one silently winning (Pulumi's own YAML reader refuses them too).
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.duplicates: list[str] = []
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise _YamlRefused(
                f"line {event.start_mark.line + 1}: YAML aliases are not accepted "
                f"(*{event.anchor}); write the value out"
            )
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
                raise _YamlRefused(
                    f"line {mark.line + 1}: values are nested deeper than {MAX_YAML_DEPTH} levels"
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        first_line: dict[object, int] = {}
        for key_node, _value in node.value:
            if (
                not isinstance(key_node, yaml.ScalarNode)
                or key_node.tag == "tag:yaml.org,2002:merge"
            ):
                continue
            key = self.construct_object(key_node)
            line = key_node.start_mark.line + 1
            try:
                if key in first_line:
                    self.duplicates.append(
                        f"duplicate key {key!r} on lines {first_line[key]} and {line}"
                    )
                else:
                    first_line[key] = line
            except TypeError:  # unhashable: the base class refuses it with its own message
                continue
        return super().construct_mapping(node, deep)


def _load_yaml(path: Path, problems: list[str]) -> dict[str, Any]:
    """A settings file as a mapping; on any problem, add it to ``problems`` and return {}."""
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_SETTINGS_FILE_BYTES + 1)
    except OSError as exc:
        problems.append(f"{path} cannot be read: {exc.strerror or exc}")
        return {}
    if len(data) > MAX_SETTINGS_FILE_BYTES:
        problems.append(
            f"{path} is larger than {MAX_SETTINGS_FILE_BYTES // 1024**2} MiB: "
            "not a settings file; refused unread"
        )
        return {}
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        problems.append(f"{path} is not UTF-8 text (byte {exc.start})")
        return {}
    loader = _SettingsLoader(text)
    try:
        loaded = loader.get_single_data()
    except _YamlRefused as exc:
        problems.append(f"{path}: {exc}")
        return {}
    except yaml.YAMLError as exc:
        problems.append(f"{path} is not valid YAML: {exc}")
        return {}
    finally:
        loader.dispose()
    if loader.duplicates:
        problems.extend(f"{path}: {d}; keep one" for d in loader.duplicates)
        return {}
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        problems.append(f"{path} must be a mapping with a config: section, not {_kind(loaded)}")
        return {}
    return loaded


def _kind(value: object) -> str:
    """``a list``, ``a string``, ... for messages about a value of the wrong shape."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return f"a {type(value).__name__}"


def _config_section(path: Path, data: Mapping[str, Any], problems: list[str]) -> dict[str, Any]:
    """The ``config:`` map of a loaded file, its keys strings; problems added, never raised."""
    section = data.get("config")
    if section is None:
        return {}
    if not isinstance(section, dict):
        problems.append(
            f"{path}: config: must be a map of keys to values (such as "
            f"{CONFIG_NAMESPACE}:instanceType: ml.m5.large), not {_kind(section)}"
        )
        return {}
    config: dict[str, Any] = {}
    for key, value in section.items():
        if isinstance(key, str):
            config[key] = value
        else:
            problems.append(
                f"{path}: config key {key!r} must be a string such as "
                f"{CONFIG_NAMESPACE}:instanceType"
            )
    return config


def load_stack_settings(project_dir: Path, stack: str) -> EndpointSettings:
    """Settings of ``stack`` read from its stack file, without the Pulumi CLI."""
    config = read_stack_config(project_dir, stack)
    prefix = f"{CONFIG_NAMESPACE}:"
    raw = {k[len(prefix) :]: v for k, v in config.items() if k.startswith(prefix)}
    return parse_settings(raw, stack=stack, region=config.get(REGION_KEY), project_dir=project_dir)


def config_as_engine_strings(config: Mapping[str, object]) -> dict[str, str]:
    """Encode stack-file values the way the Pulumi engine passes them (structured → JSON text)."""
    encode: Callable[[object], str] = lambda v: (  # noqa: E731
        v if isinstance(v, str) else json.dumps(v)
    )
    return {k: encode(v) for k, v in config.items()}
