"""The policy pack: its rules hold for every committed stack and refuse each bad declaration.

Three layers are exercised, from the inside out:

- the rules in ``policy/rules.py``, on what ``skdeploy.tooling.mockrun`` records when the real
  program runs for each stack, and on copies of those records with one thing broken; the prod rule
  also on a small program that declares its resources through pulumi-aws's own argument classes, so
  the input names the rules read are the ones the SDK sends;
- the pulumi_policy adapters in ``policy/pack.py``, called with the SDK's own argument objects
  (``ResourceValidationArgs``, ``StackValidationArgs``, ``PolicyResource``), including values
  that are unknown during a preview;
- the pack itself, started as the Pulumi CLI starts it (``python -u -m pulumi.policy <engine>
  policy``), answering the analyzer's gRPC calls on 127.0.0.1 the way it answers the CLI.

Pulumi runs a pack with its own folder first on ``sys.path``; this module does the same so that
``rules`` and ``pack`` import exactly as they do there.
"""

from __future__ import annotations

import copy
import importlib
import json
import select
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from skdeploy.core import iam
from skdeploy.tooling.mockrun import ProgramRun, run_program
from tests.support import REPO, STACKS

POLICY_DIR = REPO / "policy"
if str(POLICY_DIR) not in sys.path:
    sys.path.insert(0, str(POLICY_DIR))
rules: Any = importlib.import_module("rules")
pack: Any = importlib.import_module("pack")

BUCKET = "aws:s3/bucket:Bucket"
ACCESS_BLOCK = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
ENCRYPTION = (
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
)
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
ENDPOINT = "aws:sagemaker/endpoint:Endpoint"
CONFIG = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"
ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"
#: What the engine sends for a string it cannot know during a preview (pulumi_policy.proxy).
UNKNOWN_STRING = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"

Resources = list[dict[str, Any]]


def as_resources(run: ProgramRun) -> Resources:
    """A recorded program run as the plain resources the rules read (deep copies: mutable)."""
    return [
        {
            "type": r.type,
            "name": r.name,
            "urn": r.urn,
            "inputs": copy.deepcopy(r.inputs),
            "outputs": copy.deepcopy(r.outputs),
        }
        for r in run.resources
    ]


def violations_of(stack: str, resources: Resources) -> list[str]:
    """Every rule of the pack over one stack's resources, as messages."""
    found = [
        *rules.check_buckets_private_and_encrypted(resources),
        *rules.check_prod_endpoints(stack, resources),
    ]
    for resource in resources:
        found += rules.check_no_public_acl(resource)
        found += rules.check_iam_least_privilege(resource)
    return [v.message for v in found]


def only(resources: Resources, type_: str) -> dict[str, Any]:
    """The single resource of ``type_``."""
    found = [r for r in resources if r["type"] == type_]
    assert len(found) == 1, f"expected one {type_}, found {len(found)}"
    return found[0]


def without(resources: Resources, type_: str) -> Resources:
    """``resources`` minus every resource of ``type_``."""
    return [r for r in resources if r["type"] != type_]


def edit_policy(resource: dict[str, Any], change: Callable[[dict[str, Any]], None]) -> None:
    """Apply ``change`` to the JSON policy document in ``resource``'s ``policy`` input."""
    document = json.loads(resource["inputs"]["policy"])
    change(document)
    resource["inputs"]["policy"] = json.dumps(document)


def statement(document: dict[str, Any], sid: str) -> dict[str, Any]:
    """The statement of ``document`` with Sid ``sid``."""
    return next(s for s in document["Statement"] if s.get("Sid") == sid)


@pytest.fixture(scope="module")
def runs() -> dict[str, ProgramRun]:
    """The real program's declarations for every committed stack (run once for the module)."""
    return {stack: run_program(REPO, stack) for stack in STACKS}


@pytest.fixture
def prod(runs: dict[str, ProgramRun]) -> Resources:
    """A fresh, mutable copy of the prod stack's declarations."""
    return as_resources(runs["prod"])


# --- Every committed stack passes ----------------------------------------------------------
@pytest.mark.parametrize("stack", STACKS)
def test_every_committed_stack_passes_every_rule(stack: str, runs: dict[str, ProgramRun]) -> None:
    """The program's declarations for each committed stack break none of the pack's rules."""
    assert violations_of(stack, as_resources(runs[stack])) == []


def test_the_prod_rule_really_checks_the_committed_prod_stack(
    runs: dict[str, ProgramRun],
) -> None:
    """The prod stack is prod-named and declares what the prod rule inspects (not vacuous)."""
    resources = as_resources(runs["prod"])
    assert rules.is_prod_stack("prod")
    assert [r["type"] for r in resources].count(CONFIG) >= 1
    assert [r["type"] for r in resources].count(ENDPOINT) >= 1
    # one instance and no scaling target in the same declarations: the rule must bite
    for variant in only(resources, CONFIG)["inputs"]["productionVariants"]:
        variant["initialInstanceCount"] = 1
    resources = without(resources, rules.SCALING_TARGET_TYPE)
    assert any("instance(s)" in m for m in violations_of("prod", resources))


def test_wildcard_sids_mirror_skdeploy_iam() -> None:
    """The pack's justified ``Resource: "*"`` Sids are exactly core.iam's, reasons included."""
    assert dict(rules.WILDCARD_RESOURCE_SIDS) == iam.WILDCARD_RESOURCE_SIDS


def test_the_rules_module_needs_only_the_standard_library() -> None:
    """rules.py imports without site-packages, so the pack's venv needs only pulumi-policy."""
    probe = f"import sys; sys.path.insert(0, {str(POLICY_DIR)!r}); import rules"
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", probe], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


def test_the_pack_project_runs_on_python_with_the_tested_sdk() -> None:
    """PulumiPolicy.yaml says python; requirements.txt admits the SDK versions tested here."""
    from importlib.metadata import version

    import yaml
    from packaging.requirements import Requirement

    project = yaml.safe_load((POLICY_DIR / "PulumiPolicy.yaml").read_text())
    assert project["runtime"] == "python"
    assert project["description"]
    lines = (POLICY_DIR / "requirements.txt").read_text().splitlines()
    wanted = [Requirement(line) for line in lines if line.strip() and not line.startswith("#")]
    assert {r.name for r in wanted} == {"pulumi-policy", "pulumi"}
    for requirement in wanted:
        assert requirement.specifier.contains(version(requirement.name)), requirement


@pytest.mark.parametrize(
    ("stack", "is_prod"),
    [
        ("prod", True),
        ("prod-eu", True),
        ("production", True),
        ("Prod", True),
        ("dev", False),
        ("staging", False),
        ("preprod", False),
        ("test-prod", False),
    ],
)
def test_prod_named_stacks_are_the_ones_starting_with_prod(stack: str, is_prod: bool) -> None:
    """``prod`` and names starting with it are prod; others (even ``preprod``) are not."""
    assert rules.is_prod_stack(stack) is is_prod


# --- Rule 1: private, encrypted buckets ----------------------------------------------------
def test_a_bucket_without_a_public_access_block_is_refused(prod: Resources) -> None:
    """Dropping the bucket's BucketPublicAccessBlock is a violation naming the bucket."""
    messages = violations_of("prod", without(prod, ACCESS_BLOCK))
    bucket = only(prod, BUCKET)["name"]
    assert messages == [
        f"Bucket '{bucket}' has no BucketPublicAccessBlock: declare one for this bucket with "
        "blockPublicAcls, blockPublicPolicy, ignorePublicAcls, restrictPublicBuckets all true"
    ]


@pytest.mark.parametrize("flag", rules.PUBLIC_ACCESS_FLAGS)
def test_one_public_access_flag_left_false_is_refused(prod: Resources, flag: str) -> None:
    """Each of the four public access flags must be true; one false names that flag."""
    only(prod, ACCESS_BLOCK)["inputs"][flag] = False
    [message] = violations_of("prod", prod)
    assert "is not fully private" in message
    assert message.endswith(f"does not set {flag} to true")


def test_an_access_block_for_another_bucket_does_not_count(prod: Resources) -> None:
    """Guards are matched by the bucket's physical name, not by merely existing in the stack."""
    only(prod, ACCESS_BLOCK)["inputs"]["bucket"] = "someone-elses-bucket"
    assert any("has no BucketPublicAccessBlock" in m for m in violations_of("prod", prod))


def test_an_unencrypted_bucket_is_refused(prod: Resources) -> None:
    """Dropping the encryption configuration is a violation asking for AES256 or KMS."""
    [message] = violations_of("prod", without(prod, ENCRYPTION))
    assert "is not encrypted" in message
    assert "AES256" in message
    assert "aws:kms" in message


@pytest.mark.parametrize(("algorithm", "allowed"), [("aws:kms", True), ("NONE", False)])
def test_kms_encryption_is_accepted_and_unknown_algorithms_are_not(
    prod: Resources, algorithm: str, allowed: bool
) -> None:
    """``aws:kms`` satisfies the rule; an algorithm S3 does not define does not."""
    rule = only(prod, ENCRYPTION)["inputs"]["rules"][0]
    rule["applyServerSideEncryptionByDefault"]["sseAlgorithm"] = algorithm
    messages = violations_of("prod", prod)
    assert messages == ([] if allowed else [m for m in messages if "'NONE'" in m])
    assert allowed or messages


def test_a_bucket_encrypted_by_its_inline_configuration_passes(prod: Resources) -> None:
    """The bucket's own (deprecated) serverSideEncryptionConfiguration counts as encryption."""
    resources = without(prod, ENCRYPTION)
    only(resources, BUCKET)["inputs"]["serverSideEncryptionConfiguration"] = {
        "rule": {"applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms"}}
    }
    assert violations_of("prod", resources) == []


def test_a_public_canned_acl_on_the_bucket_is_refused(prod: Resources) -> None:
    """A bucket declared with ``acl: public-read`` is a violation."""
    only(prod, BUCKET)["inputs"]["acl"] = "public-read"
    [message] = violations_of("prod", prod)
    assert "sets the public ACL 'public-read'" in message


def test_a_grant_to_all_users_is_refused() -> None:
    """A BucketAclV2 granting READ to the AllUsers group is a violation."""
    acl = {
        "type": "aws:s3/bucketAclV2:BucketAclV2",
        "name": "artifacts-acl",
        "inputs": {
            "bucket": "b",
            "accessControlPolicy": {
                "owner": {"id": "owner"},
                "grants": [{"permission": "READ", "grantee": {"type": "Group", "uri": ALL_USERS}}],
            },
        },
    }
    [violation] = rules.check_no_public_acl(acl)
    assert (
        violation.message
        == f"BucketAclV2 'artifacts-acl' grants access to the public group {ALL_USERS}"
    )


# --- Rule 2: least-privilege IAM -----------------------------------------------------------
@pytest.mark.parametrize(
    ("attached_by", "managed"),
    [("attachment", "AdministratorAccess"), ("role", "AmazonSageMakerFullAccess")],
)
def test_broad_managed_policies_are_refused(
    prod: Resources, attached_by: str, managed: str
) -> None:
    """AdministratorAccess or any *FullAccess managed policy, attached either way, is refused."""
    arn = f"arn:aws:iam::aws:policy/{managed}"
    role = only(prod, ROLE)
    if attached_by == "role":
        role["inputs"]["managedPolicyArns"] = [arn]
    else:
        prod.append(
            {
                "type": "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
                "name": "admin",
                "inputs": {"role": role["outputs"]["name"], "policyArn": arn},
            }
        )
    [message] = violations_of("prod", prod)
    assert f"attaches the managed policy {arn}" in message
    assert "least-privilege" in message


@pytest.mark.parametrize("action", ["s3:*", "*"])
def test_a_wildcard_action_is_refused(prod: Resources, action: str) -> None:
    """An Allow statement with ``s3:*`` or ``*`` in the execution role's policy is refused."""
    edit_policy(
        only(prod, ROLE_POLICY),
        lambda d: statement(d, "ReadModelArtifact").update(Action=[action]),
    )
    [message] = violations_of("prod", prod)
    assert f"statement 'ReadModelArtifact' allows the wildcard action {action!r}" in message


def test_a_wildcard_action_in_a_deny_statement_is_allowed(prod: Resources) -> None:
    """Denying ``s3:*`` (as the TLS-only bucket policy does) is not a broad grant."""
    edit_policy(
        only(prod, ROLE_POLICY),
        lambda d: d["Statement"].append(
            {"Sid": "DenyAll", "Effect": "Deny", "Action": "s3:*", "Resource": "*"}
        ),
    )
    assert violations_of("prod", prod) == []


def test_resource_star_with_an_unjustified_sid_is_refused(prod: Resources) -> None:
    """``Resource: "*"`` is refused in a statement whose Sid is not a justified one."""
    edit_policy(
        only(prod, ROLE_POLICY),
        lambda d: statement(d, "ReadModelArtifact").update(Resource="*"),
    )
    [message] = violations_of("prod", prod)
    assert "statement 'ReadModelArtifact' allows Resource \"*\"" in message
    assert "WILDCARD_RESOURCE_SIDS" in message


def test_an_inline_role_policy_is_checked_too(prod: Resources) -> None:
    """A role's ``inlinePolicies`` documents get the same checks as a RolePolicy."""
    only(prod, ROLE)["inputs"]["inlinePolicies"] = [
        {
            "name": "extra",
            "policy": json.dumps(
                {"Statement": [{"Effect": "Allow", "Action": "sagemaker:*", "Resource": "*"}]}
            ),
        }
    ]
    messages = violations_of("prod", prod)
    assert len(messages) == 2
    assert all(
        m.startswith(f"Role '{only(prod, ROLE)['name']}' inline policy 'extra'") for m in messages
    )


# --- Rule 3: prod endpoints, on declarations made through pulumi-aws's own classes ---------
SHAPES_PROGRAM = '''
"""Prod-rule fixtures declared through pulumi-aws's argument classes (see tests/test_policy.py)."""
import pulumi
import pulumi_aws as aws

cfg = pulumi.Config("shape")
endpoint_name, variant = "shape-endpoint", "AllTraffic"
sm = aws.sagemaker
if cfg.get_bool("serverless"):
    production_variant = sm.EndpointConfigurationProductionVariantArgs(
        variant_name=variant,
        model_name="shape-model",
        serverless_config=sm.EndpointConfigurationProductionVariantServerlessConfigArgs(
            max_concurrency=5, memory_size_in_mb=2048
        ),
    )
else:
    production_variant = sm.EndpointConfigurationProductionVariantArgs(
        variant_name=variant,
        model_name="shape-model",
        instance_type="ml.c5.xlarge",
        initial_instance_count=cfg.get_int("instances") or 2,
    )
capture = cfg.get("capture") or "on"
sampling = cfg.get_int("sampling")
capture_config = None
if capture != "none":
    capture_config = sm.EndpointConfigurationDataCaptureConfigArgs(
        enable_capture={"on": True, "off": False, "unset": None}[capture],
        initial_sampling_percentage=20 if sampling is None else sampling,
        destination_s3_uri="s3://shape-bucket/datacapture",
        capture_options=[
            sm.EndpointConfigurationDataCaptureConfigCaptureOptionArgs(capture_mode="Input")
        ],
    )
config = sm.EndpointConfiguration(
    "shape-config", production_variants=[production_variant], data_capture_config=capture_config
)
alarm = aws.cloudwatch.MetricAlarm(
    "shape-5xx",
    name="shape-5xx",
    namespace="AWS/SageMaker",
    metric_name="Invocation5XXErrors",
    dimensions={"EndpointName": endpoint_name, "VariantName": variant},
    statistic="Sum",
    period=60,
    evaluation_periods=1,
    threshold=1,
    comparison_operator="GreaterThanOrEqualToThreshold",
)
deployment = None
if cfg.get_bool("alarms") is not False:
    deployment = sm.EndpointDeploymentConfigArgs(
        auto_rollback_configuration=sm.EndpointDeploymentConfigAutoRollbackConfigurationArgs(
            alarms=[
                sm.EndpointDeploymentConfigAutoRollbackConfigurationAlarmArgs(
                    alarm_name=alarm.name
                )
            ]
        ),
        blue_green_update_policy=sm.EndpointDeploymentConfigBlueGreenUpdatePolicyArgs(
            traffic_routing_configuration=sm.EndpointDeploymentConfigBlueGreenUpdatePolicyTrafficRoutingConfigurationArgs(
                type="ALL_AT_ONCE", wait_interval_in_seconds=60
            )
        ),
    )
endpoint = sm.Endpoint(
    "shape-endpoint",
    name=endpoint_name,
    endpoint_config_name=config.name,
    deployment_config=deployment,
)
min_capacity = cfg.get_int("min_capacity")
if min_capacity is not None:
    aws.appautoscaling.Target(
        "shape-scaling",
        service_namespace="sagemaker",
        scalable_dimension="sagemaker:variant:DesiredInstanceCount",
        resource_id=endpoint.name.apply(lambda n: f"endpoint/{n}/variant/{variant}"),
        min_capacity=min_capacity,
        max_capacity=max(min_capacity, 4),
    )
'''


def declared_shapes(tmp_path: Path, stack: str = "prod", **knobs: object) -> Resources:
    """Run the shapes program under mockrun with ``shape:<knob>`` config; its declarations."""
    program = tmp_path / "shapes.py"
    program.write_text(SHAPES_PROGRAM)
    config: dict[str, object] = {"aws:region": "eu-west-1"}
    config.update({f"shape:{k}": v for k, v in knobs.items()})
    return as_resources(run_program(tmp_path, stack, config, program=program))


def prod_messages(tmp_path: Path, **knobs: object) -> list[str]:
    """The prod rule's messages for the shapes program with ``knobs``."""
    return [
        v.message for v in rules.check_prod_endpoints("prod", declared_shapes(tmp_path, **knobs))
    ]


def test_a_compliant_prod_declaration_passes(tmp_path: Path) -> None:
    """Two instances, enabled capture and a rollback alarm, as pulumi-aws sends them, pass."""
    assert prod_messages(tmp_path) == []


def test_one_instance_in_prod_is_refused(tmp_path: Path) -> None:
    """A prod variant with initialInstanceCount 1 and no scaling target is a violation."""
    [message] = prod_messages(tmp_path, instances=1)
    assert "variant 'AllTraffic' may run 1 instance(s): prod needs" in message


@pytest.mark.parametrize(("min_capacity", "allowed"), [(2, True), (1, False)])
def test_an_autoscaling_floor_of_two_stands_in_for_the_instance_count(
    tmp_path: Path, min_capacity: int, allowed: bool
) -> None:
    """One initial instance is fine when the variant's scaling target keeps minCapacity >= 2."""
    messages = prod_messages(tmp_path, instances=1, min_capacity=min_capacity)
    assert (messages == []) is allowed
    assert all("instance(s)" in m for m in messages)


@pytest.mark.parametrize(
    ("knobs", "expected"),
    [
        ({"capture": "none"}, "has no dataCaptureConfig"),
        ({"capture": "off"}, "does not enable data capture"),
        ({"capture": "unset"}, "does not enable data capture"),
        ({"sampling": 0}, "captures no requests"),
    ],
)
def test_prod_without_data_capture_is_refused(
    tmp_path: Path, knobs: dict[str, object], expected: str
) -> None:
    """No capture config, capture off or left unset (the provider sends false), or 0% sampled."""
    [message] = prod_messages(tmp_path, **knobs)
    assert expected in message


def test_prod_without_rollback_alarms_is_refused(tmp_path: Path) -> None:
    """A prod endpoint without deploymentConfig.autoRollbackConfiguration.alarms is refused."""
    [message] = prod_messages(tmp_path, alarms=False)
    assert "has no rollback alarms" in message


def test_a_serverless_variant_in_prod_is_refused(tmp_path: Path) -> None:
    """A serverless production variant in a prod stack is a violation."""
    [message] = prod_messages(tmp_path, serverless=True)
    assert "variant 'AllTraffic' is serverless; prod runs on instances" in message


def test_non_prod_stacks_are_exempt_from_the_prod_rule(tmp_path: Path) -> None:
    """The same serverless, uncaptured, alarm-less endpoint is fine in a ``dev`` stack."""
    resources = declared_shapes(tmp_path, "dev", serverless=True, capture="none", alarms=False)
    assert rules.check_prod_endpoints("dev", resources) == []
    assert len(rules.check_prod_endpoints("prod", resources)) == 3


# --- The pulumi_policy adapters ------------------------------------------------------------
def policy_named(name: str) -> Any:
    """The pack's policy object called ``name``."""
    return next(p for p in pack.POLICIES if p.name == name)


def resource_args(resource: dict[str, Any]) -> Any:
    """The SDK's own ResourceValidationArgs for ``resource``, props behind its unknown proxy."""
    from pulumi_policy import PolicyCustomTimeouts, PolicyResourceOptions, ResourceValidationArgs
    from pulumi_policy.proxy import unknown_checking_proxy

    options = PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [])
    return ResourceValidationArgs(
        resource["type"],
        unknown_checking_proxy(copy.deepcopy(resource["inputs"])),
        resource.get("urn", ""),
        resource["name"],
        options,
        None,
    )


def stack_args(resources: Resources, dependencies: dict[str, dict[str, list[str]]]) -> Any:
    """The SDK's own StackValidationArgs; ``dependencies``: name -> input -> names it came from."""
    from pulumi_policy import (
        PolicyCustomTimeouts,
        PolicyResource,
        PolicyResourceOptions,
        StackValidationArgs,
    )
    from pulumi_policy.proxy import unknown_checking_proxy

    options = PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [])
    built = {
        r["name"]: PolicyResource(
            r["type"],
            unknown_checking_proxy({**r["outputs"], **r["inputs"]}),
            r["urn"],
            r["name"],
            options,
            None,
            None,
            [],
            {},
        )
        for r in resources
    }
    for name, props in dependencies.items():
        for prop, sources in props.items():
            built[name].property_dependencies[prop] = [built[s] for s in sources]
    return StackValidationArgs(list(built.values()))


class Reports:
    """A report_violation callback that keeps what it is given."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str | None]] = []

    def __call__(self, message: str, urn: str | None = None) -> None:
        self.calls.append((message, urn))


def test_every_policy_is_mandatory_and_uniquely_named() -> None:
    """All four policies block a deployment (MANDATORY) and have distinct names."""
    from pulumi_policy import EnforcementLevel

    names = [p.name for p in pack.POLICIES]
    assert len(set(names)) == len(names) == 4
    assert {p.enforcement_level for p in pack.POLICIES} == {EnforcementLevel.MANDATORY}


def test_the_resource_adapter_reports_the_rules_message(prod: Resources) -> None:
    """The IAM policy's validate calls report_violation with the rule's message."""
    role_policy = only(prod, ROLE_POLICY)
    edit_policy(role_policy, lambda d: statement(d, "ReadModelArtifact").update(Action="s3:*"))
    reports = Reports()
    policy_named("iam-least-privilege").validate(resource_args(role_policy), reports)
    expected = [v.message for v in rules.check_iam_least_privilege(role_policy)]
    assert len(expected) == 1
    assert reports.calls == [(expected[0], None)]


def test_a_policy_unknown_during_preview_is_left_to_the_update(prod: Resources) -> None:
    """An inline policy not known yet is skipped (Pulumi checks it again before creating it)."""
    role_policy = only(prod, ROLE_POLICY)
    role_policy["inputs"]["policy"] = UNKNOWN_STRING
    reports = Reports()
    policy_named("iam-least-privilege").validate(resource_args(role_policy), reports)
    assert reports.calls == []


def test_the_stack_adapter_reports_with_the_offending_urn(prod: Resources) -> None:
    """The bucket policy reports a missing access block against the bucket's URN."""
    reports = Reports()
    args = stack_args(without(prod, ACCESS_BLOCK), {})
    policy_named("s3-buckets-private-and-encrypted").validate(args, reports)
    assert len(reports.calls) == 1
    message, urn = reports.calls[0]
    assert "has no BucketPublicAccessBlock" in message
    assert urn == only(prod, BUCKET)["urn"]


def test_guards_whose_bucket_is_unknown_in_a_preview_match_by_dependency(prod: Resources) -> None:
    """In a preview a new bucket's id is unknown: its guards are matched through the engine's
    property dependencies, and without that dependency they would not count."""
    bucket = only(prod, BUCKET)
    for guard in (only(prod, ACCESS_BLOCK), only(prod, ENCRYPTION)):
        guard["inputs"]["bucket"] = UNKNOWN_STRING
    deps = {
        only(prod, ACCESS_BLOCK)["name"]: {"bucket": [bucket["name"]]},
        only(prod, ENCRYPTION)["name"]: {"bucket": [bucket["name"]]},
    }
    policy = policy_named("s3-buckets-private-and-encrypted")
    matched, unmatched = Reports(), Reports()
    policy.validate(stack_args(prod, deps), matched)
    policy.validate(stack_args(prod, {}), unmatched)
    assert matched.calls == []
    assert len(unmatched.calls) == 2


def test_the_prod_adapter_reads_the_stack_name_from_the_urns(tmp_path: Path) -> None:
    """The prod policy applies when the URNs name a ``prod`` stack, not when they name ``dev``."""
    policy = policy_named("prod-endpoint-resilient")
    for stack, expected in (("prod", 1), ("dev", 0)):
        resources = declared_shapes(tmp_path, stack, alarms=False)
        reports = Reports()
        policy.validate(stack_args(resources, {}), reports)
        assert len(reports.calls) == expected
        assert all("has no rollback alarms" in m for m, _ in reports.calls)


# --- The pack itself, as the Pulumi CLI runs it --------------------------------------------
def _struct(values: dict[str, Any]) -> Any:
    from google.protobuf import json_format, struct_pb2

    return json_format.ParseDict(json.loads(json.dumps(values, default=str)), struct_pb2.Struct())


@pytest.fixture(scope="module")
def analyzer() -> Iterator[Any]:
    """The pack started like the CLI does (``python -u -m pulumi.policy``), as a gRPC stub."""
    import grpc
    from pulumi.runtime.proto import analyzer_pb2_grpc

    process = subprocess.Popen(
        [sys.executable, "-u", "-m", "pulumi.policy", "127.0.0.1:0", str(POLICY_DIR)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], 60)
        line = process.stdout.readline().strip() if ready else ""
        if not line.isdigit():
            process.kill()
            _, stderr = process.communicate(timeout=10)
            pytest.fail(f"the policy pack did not start: {line!r}\n{stderr}")
        channel = grpc.insecure_channel(f"127.0.0.1:{line}")
        grpc.channel_ready_future(channel).result(timeout=30)
        try:
            yield analyzer_pb2_grpc.AnalyzerStub(channel)
        finally:
            channel.close()
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def analyze_stack(analyzer: Any, resources: Resources) -> list[Any]:
    """Every diagnostic the running pack returns for a stack: per resource, then whole stack."""
    from pulumi.runtime.proto import analyzer_pb2

    diagnostics: list[Any] = []
    for r in resources:
        request = analyzer_pb2.AnalyzeRequest(
            type=r["type"], properties=_struct(r["inputs"]), urn=r["urn"], name=r["name"]
        )
        diagnostics += analyzer.Analyze(request).diagnostics
    stack = analyzer_pb2.AnalyzeStackRequest(
        resources=[
            analyzer_pb2.AnalyzerResource(
                type=r["type"],
                properties=_struct({**r["outputs"], **r["inputs"]}),
                urn=r["urn"],
                name=r["name"],
            )
            for r in resources
        ]
    )
    diagnostics += analyzer.AnalyzeStack(stack).diagnostics
    return diagnostics


def test_the_running_pack_declares_its_policies_as_mandatory(analyzer: Any) -> None:
    """GetAnalyzerInfo lists the pack's four policies, each MANDATORY."""
    from google.protobuf import empty_pb2
    from pulumi.runtime.proto import analyzer_pb2

    info = analyzer.GetAnalyzerInfo(empty_pb2.Empty())
    assert info.name == pack.PACK_NAME
    assert sorted(p.name for p in info.policies) == sorted(p.name for p in pack.POLICIES)
    assert {p.enforcementLevel for p in info.policies} == {analyzer_pb2.MANDATORY}


@pytest.mark.parametrize("stack", STACKS)
def test_the_running_pack_passes_every_committed_stack(
    analyzer: Any, runs: dict[str, ProgramRun], stack: str
) -> None:
    """Sent over gRPC as the CLI sends them, each stack's resources draw no diagnostic."""
    assert [d.message for d in analyze_stack(analyzer, as_resources(runs[stack]))] == []


def test_the_running_pack_blocks_a_bad_declaration(analyzer: Any, prod: Resources) -> None:
    """A public-access flag turned off draws one MANDATORY diagnostic naming the flag."""
    from pulumi.runtime.proto import analyzer_pb2

    only(prod, ACCESS_BLOCK)["inputs"]["restrictPublicBuckets"] = False
    [diagnostic] = analyze_stack(analyzer, prod)
    assert diagnostic.policyName == "s3-buckets-private-and-encrypted"
    assert diagnostic.enforcementLevel == analyzer_pb2.MANDATORY
    assert diagnostic.message.endswith("does not set restrictPublicBuckets to true")
    assert diagnostic.urn == only(prod, BUCKET)["urn"]
