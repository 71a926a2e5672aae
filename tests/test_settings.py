"""Settings: every rule refuses bad input, and all problems come back in one message."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
import yaml

from skdeploy.core.settings import (
    SECRET,
    SETTINGS,
    ApiSettings,
    AutoscalingSettings,
    DataCaptureSettings,
    DeploymentSettings,
    ServerlessSettings,
    SettingsError,
    VpcSettings,
    load_stack_settings,
    parse_settings,
    read_stack_config,
)
from tests.support import REPO, STACKS, copy_project


def parse(raw: dict[str, object], region: object = "us-east-1", project: Path = REPO):
    return parse_settings(raw, stack="test", region=region, project_dir=project)


def test_defaults_follow_the_documented_values() -> None:
    """With no keys, the documented defaults apply."""
    settings = parse({})
    assert settings.framework_version == "1.2-1"
    assert settings.instance_type == "ml.m5.large"
    assert settings.instance_count == 1
    assert settings.endpoint_name == "skdeploy-test"
    assert settings.model_dir == REPO / "model"
    assert settings.inference_dir == REPO / "inference"
    assert settings.model_files == ("model.joblib",)
    assert settings.network_isolation is True
    assert settings.image_uri is None


@pytest.mark.parametrize("stack", STACKS)
def test_every_committed_stack_file_is_valid(stack: str) -> None:
    """Each stacks/Pulumi.<stack>.yaml loads without a problem."""
    settings = load_stack_settings(REPO, stack)
    assert settings.stack == stack


def test_prod_runs_at_least_two_instances() -> None:
    """Prod keeps serving when one instance fails."""
    assert load_stack_settings(REPO, "prod").instance_count >= 2


BAD_VALUES = [
    ({"instanceType": "m5.large"}, "instanceType", "must start with `ml.`"),
    ({"instanceCount": 0}, "instanceCount", "from 1 to 100"),
    ({"instanceCount": "two"}, "instanceCount", "from 1 to 100"),
    ({"instanceCount": True}, "instanceCount", "from 1 to 100"),
    ({"frameworkVersion": "9.9-9"}, "frameworkVersion", "supported: 0.23-1, 1.0-1, 1.2-1, 1.4-2"),
    ({"frameworkVersion": ["1.2-1"]}, "frameworkVersion", "supported: 0.23-1"),
    ({"endpointName": "bad_name!"}, "endpointName", "letters, digits or hyphens"),
    ({"endpointName": "x" * 64}, "endpointName", "1-63"),
    ({"endpointName": "a" + "-" * 80 + "b"}, "endpointName", "1-63"),
    ({"networkIsolation": "maybe"}, "networkIsolation", "true or false"),
    ({"imageUri": "docker.io/library/python:3"}, "imageUri", "ECR image URI"),
    ({"modelFiles": []}, "modelFiles", "non-empty list"),
    ({"modelFiles": ["../secrets.joblib"]}, "modelFiles", "plain file name"),
    ({"modelFiles": ["missing.joblib"]}, "modelFiles", "does not exist"),
    ({"modelDir": "nowhere"}, "modelDir", "does not exist"),
    ({"inferenceDir": "model"}, "inferenceDir", "has no inference.py"),
    ({"tags": {"aws:owner": "x"}}, "tags", "must not start with aws:"),
    ({"tags": {"k": "v" * 257}}, "tags", "at most 256"),
    ({"tags": ["not", "a", "map"]}, "tags", "map of strings"),
    ({"instanceTpye": "ml.m5.large"}, "instanceTpye", "unknown key"),
    ({"instanceType": SECRET}, "instanceType", "must not be a secret"),
]


@pytest.mark.parametrize(("raw", "key", "rule"), BAD_VALUES)
def test_each_rule_refuses_its_bad_value(raw: dict[str, object], key: str, rule: str) -> None:
    """A bad value is refused with a message naming the key and the rule."""
    with pytest.raises(SettingsError) as caught:
        parse(raw)
    assert any(f"skdeploy:{key}" in p and rule in p for p in caught.value.problems), caught.value


@pytest.mark.parametrize("region", [None, "", "mars-1", "US-EAST-1"])
def test_region_is_required_and_checked(region: object) -> None:
    """aws:region must be a real-looking region; the message says how to set it."""
    with pytest.raises(SettingsError, match="pulumi config set aws:region"):
        parse({}, region=region)


def test_network_isolation_is_refused_with_requirements(tmp_path: Path) -> None:
    """requirements.txt cannot be installed without network: isolation + requirements fails."""
    project = copy_project(tmp_path)
    (project / "inference" / "requirements.txt").write_text("requests==2.32.3\n")
    assert parse({}, project=project).network_isolation is False
    with pytest.raises(SettingsError, match="pip-installs it"):
        parse({"networkIsolation": True}, project=project)


def test_engine_strings_are_coerced_like_yaml_values() -> None:
    """Pulumi hands values as strings; "2", "false" and JSON objects mean the same as YAML."""
    settings = parse({"instanceCount": "2", "networkIsolation": "false", "tags": '{"team": "ml"}'})
    assert settings.instance_count == 2
    assert settings.network_isolation is False
    assert settings.tags == {"team": "ml"}


def test_a_bad_stack_file_lists_every_problem_at_once(tmp_path: Path) -> None:
    """One SettingsError carries all problems of a stack file, not just the first."""
    project = copy_project(tmp_path)
    (project / "stacks" / "Pulumi.broken.yaml").write_text(
        "config:\n"
        "  skdeploy:instanceType: m5.large\n"
        "  skdeploy:instanceCount: -1\n"
        "  skdeploy:frameworkVersion: '0.1'\n"
    )
    with pytest.raises(SettingsError) as caught:
        load_stack_settings(project, "broken")
    message = str(caught.value)
    assert "4 invalid setting(s)" in message
    for fragment in ("aws:region", "instanceType", "instanceCount", "frameworkVersion"):
        assert fragment in message


def test_secrets_are_masked_and_never_needed(tmp_path: Path) -> None:
    """A secure value of another namespace loads as [secret] and does not stop the CLI."""
    project = copy_project(tmp_path)
    stack = project / "stacks" / "Pulumi.dev.yaml"
    stack.write_text(stack.read_text() + "  datadog:apiKey:\n    secure: AAABAHx0ZXh0\n")
    assert read_stack_config(project, "dev")["datadog:apiKey"] == SECRET
    assert load_stack_settings(project, "dev").stack == "dev"


def test_project_file_defaults_apply_under_the_stack_file(tmp_path: Path) -> None:
    """Pulumi.yaml config defaults are used unless the stack file sets the key."""
    project = copy_project(tmp_path)
    (project / "Pulumi.yaml").write_text(
        (project / "Pulumi.yaml").read_text()
        + "config:\n  instanceType:\n    default: ml.c5.large\n  skdeploy:instanceCount: 3\n"
    )
    settings = load_stack_settings(project, "staging")
    assert settings.instance_type == "ml.m5.large"  # the stack file wins
    assert settings.instance_count == 1
    (project / "stacks" / "Pulumi.bare.yaml").write_text("config:\n  aws:region: us-west-2\n")
    bare = load_stack_settings(project, "bare")
    assert bare.instance_type == "ml.c5.large"
    assert bare.instance_count == 3


def test_an_unknown_stack_names_the_known_ones() -> None:
    """Asking for a stack without a file lists the stacks that exist."""
    with pytest.raises(SettingsError, match="stacks found: dev, prod, staging"):
        load_stack_settings(REPO, "qa")


#: A map key as the smallest stack value that turns it on, and the settings attribute it fills.
MAP_KEYS = {
    "serverless": ({}, "serverless"),
    "autoscaling": ({"min": 1, "max": 2}, "autoscaling"),
    "deployment": ({}, "deployment"),
    "dataCapture": ({}, "data_capture"),
    "api": ({"enabled": True}, "api"),
}
#: Documented defaults that say "left unset here, decided elsewhere" rather than give a value.
UNSET = {"none", "the artifact bucket"}
#: Documented sub-keys whose setting attribute is not the snake_case of the key.
ATTRIBUTE_OF = {"rate": "throttle_rate", "burst": "throttle_burst"}


def documented_defaults(rule: str) -> dict[str, str]:
    """``key: ... (default)`` pairs of a settings-table rule, e.g. ``memoryMb: ... (2048)``."""
    return dict(re.findall(r"(\w+): [^:(){}]*?\(([^()]*)\)", rule))


def snake(name: str) -> str:
    return ATTRIBUTE_OF.get(name) or re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower()


@pytest.mark.parametrize("key", sorted(MAP_KEYS))
def test_each_documented_default_is_the_parsed_default(key: str) -> None:
    """Every "(default)" in a map's README rule is what the parser fills in, as is its class's."""
    (spec,) = [s for s in SETTINGS if s.key == key]
    documented = documented_defaults(spec.rule)
    # Every "(...)" inside the rule's `{...}` is a default: the pattern must find each of them.
    shape = re.search(r"`\{(.*)\}`", spec.rule)
    assert shape is not None, spec.rule
    assert len(documented) == len(re.findall(r"\([^()]*\)", shape.group(1))), spec.rule
    value, attribute = MAP_KEYS[key]
    parsed = getattr(parse({key: value}), attribute)
    for name, text in documented.items():
        actual = getattr(parsed, snake(name))
        expected = None if text in UNSET else yaml.safe_load(text)
        assert actual == expected, f"{key}.{name}: README says ({text}), parser gives {actual!r}"
    assert parsed == type(parsed)(**{f: getattr(parsed, f) for f in required_fields(parsed)})


def required_fields(instance: object) -> list[str]:
    """The fields of a settings dataclass that have no default of their own."""
    return [
        f.name
        for f in dataclasses.fields(instance)  # type: ignore[arg-type]
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]


def test_top_level_documented_defaults_are_the_parsed_defaults() -> None:
    """Defaults written as a value in the README table (`ml.m5.large`, `1`, `30`...) apply."""
    settings = parse({})
    checked = 0
    for spec in SETTINGS:
        match = re.fullmatch(r"`([^`<>]*)`", spec.default)
        if match is None or not hasattr(settings, snake(spec.key)):
            continue
        actual = getattr(settings, snake(spec.key))
        if isinstance(actual, Path):
            actual = actual.relative_to(REPO).as_posix()
        assert actual == yaml.safe_load(match.group(1)), spec.key
        checked += 1
    assert checked >= 8
    (variants,) = [s for s in SETTINGS if s.key == "variants"]
    (weight,) = re.findall(r"weight \((\w+)\)", variants.rule)
    assert parse({"variants": [{"name": "a"}]}).variants[0].weight == yaml.safe_load(weight)


def test_a_value_object_refuses_what_the_parser_refuses() -> None:
    """Built directly, a settings part checks its fields by the schema and lists every problem."""
    with pytest.raises(
        ValueError, match=r"invalid autoscaling: min = 0: a whole number 1-100; max"
    ):
        AutoscalingSettings(min=0, max=101)
    with pytest.raises(ValueError, match="min must not exceed max"):
        AutoscalingSettings(min=3, max=2)
    with pytest.raises(ValueError, match="provisionedConcurrency must not exceed maxConcurrency"):
        ServerlessSettings(max_concurrency=5, provisioned_concurrency=6)
    with pytest.raises(ValueError, match=r"invalid api: burst = 0: a whole number 1-5000"):
        ApiSettings(throttle_burst=0)
    with pytest.raises(ValueError, match="strategy = 'blue': one of all-at-once, canary, linear"):
        DeploymentSettings(strategy="blue")
    with pytest.raises(ValueError, match="subnetIds = \\(\\): a non-empty list of subnet ids"):
        VpcSettings(subnet_ids=(), security_group_ids=("sg-1",))
    with pytest.raises(ValueError, match="samplingPercent = '50': a whole number 1-100"):
        DataCaptureSettings(sampling_percent="50")  # type: ignore[arg-type]


def test_value_objects_take_their_documented_defaults() -> None:
    """The defaults of each part pass its own checks: building one with none given works."""
    assert ServerlessSettings().memory_mb == 2048
    assert DeploymentSettings().strategy == "all-at-once"
    assert DataCaptureSettings().bucket is None
    assert ApiSettings().auth == "iam"
