"""The real __main__.py, run under Pulumi's mocks for every stack: what it declares, and how."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from skdeploy.core.artifact import build_for_settings
from skdeploy.core.constants import (
    COMPONENT_TYPE,
    DEFAULT_VARIANT,
    STACK_OUTPUTS,
    artifact_key,
    container_environment,
)
from skdeploy.core.settings import SECRET, load_stack_settings, read_stack_config
from skdeploy.tooling.mockrun import MOCK_ACCOUNT_ID, ProgramRun, run_program
from tests.support import REPO, STACKS, copy_project

BUCKET = "aws:s3/bucket:Bucket"
OBJECT = "aws:s3/bucketObjectv2:BucketObjectv2"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
MODEL = "aws:sagemaker/model:Model"
CONFIG = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"
ENDPOINT = "aws:sagemaker/endpoint:Endpoint"


@pytest.fixture(scope="module", params=STACKS)
def declared(request: pytest.FixtureRequest) -> ProgramRun:
    """The program's declarations for one committed stack."""
    return run_program(REPO, request.param)


def policy(resource_inputs: dict, key: str) -> dict:
    return json.loads(resource_inputs[key])


def test_every_resource_is_in_a_child_component_aliased_to_its_deployed_urn(
    declared: ProgramRun,
) -> None:
    """AWS resources sit in skdeploy child components, each aliased to its URN of old.

    Stacks were deployed with every resource directly under the SklearnEndpoint: the alias to
    that URN is what keeps ``pulumi up`` from replacing them.
    """
    component = declared.one(COMPONENT_TYPE)
    children = [r for r in declared.resources if r.parent == component.urn]
    parts = {r.urn for r in children if r.type.startswith("skdeploy:index:")}
    assert {r.type for r in children} - {"pulumi:pulumi:StackReference"} <= {
        r.type for r in children if r.urn in parts
    }
    assert len(parts) >= 3
    managed = [r for r in declared.resources if r.custom and r.parent != component.urn]
    assert len(managed) >= 12
    stack = declared.stack
    for resource in managed:
        assert resource.parent in parts
        deployed = (
            f"urn:pulumi:{stack}::skdeploy::{COMPONENT_TYPE}${resource.type}::{resource.name}"
        )
        assert deployed in resource.aliases


def test_the_bucket_is_private_encrypted_versioned_and_tls_only(declared: ProgramRun) -> None:
    """Public access blocked four ways, owner-enforced, AES256, versioned, non-TLS denied."""
    bucket = declared.one(BUCKET)
    block = declared.one("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock").inputs
    assert all(
        block[k] is True
        for k in (
            "blockPublicAcls",
            "blockPublicPolicy",
            "ignorePublicAcls",
            "restrictPublicBuckets",
        )
    )
    ownership = declared.one("aws:s3/bucketOwnershipControls:BucketOwnershipControls").inputs
    assert ownership["rule"]["objectOwnership"] == "BucketOwnerEnforced"
    encryption = declared.one(
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
    ).inputs
    assert encryption["rules"][0]["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "AES256"
    versioning = declared.one("aws:s3/bucketVersioning:BucketVersioning").inputs
    assert versioning["versioningConfiguration"]["status"] == "Enabled"
    deny = policy(declared.one("aws:s3/bucketPolicy:BucketPolicy").inputs, "policy")["Statement"][0]
    assert deny["Effect"] == "Deny"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert bucket.outputs["arn"] in deny["Resource"]
    for part in (block, ownership, encryption, versioning):
        assert part["bucket"] == bucket.outputs["bucket"]


def test_the_artifact_is_content_addressed_and_retained(declared: ProgramRun) -> None:
    """The object's key is models/<sha256>/model.tar.gz; retained on delete; after bucket setup."""
    settings = load_stack_settings(REPO, declared.stack)
    sha256 = build_for_settings(settings).sha256
    artifact = declared.one(OBJECT)
    assert artifact.inputs["key"] == artifact_key(sha256)
    assert artifact.retain_on_delete is True
    assert artifact.inputs["source"] == {"fileAsset": "model.tar.gz"}
    setup_types = {declared.by_urn(u).type for u in artifact.dependencies}
    assert {
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
        "aws:s3/bucketVersioning:BucketVersioning",
    } <= setup_types
    assert declared.exports["artifactSha256"] == sha256


def test_the_role_trusts_only_sagemaker_of_this_account(declared: ProgramRun) -> None:
    """Only sagemaker.amazonaws.com may assume the role, guarded by aws:SourceAccount."""
    trust = policy(declared.one(ROLE).inputs, "assumeRolePolicy")["Statement"]
    assert trust == [
        {
            "Sid": "SageMakerAssumesRole",
            "Effect": "Allow",
            "Principal": {"Service": "sagemaker.amazonaws.com"},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"aws:SourceAccount": MOCK_ACCOUNT_ID}},
        }
    ]
    assert "managedPolicyArns" not in declared.one(ROLE).inputs
    assert not declared.by_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")


def test_the_role_policy_is_least_privilege(declared: ProgramRun) -> None:
    """The role may read exactly the artifact, pull exactly the image, write its own logs."""
    statements = {
        s["Sid"]: s for s in policy(declared.one(ROLE_POLICY).inputs, "policy")["Statement"]
    }
    bucket = declared.one(BUCKET).outputs["bucket"]
    key = declared.one(OBJECT).inputs["key"]
    assert statements["ReadModelArtifact"]["Action"] == ["s3:GetObject"]
    assert statements["ReadModelArtifact"]["Resource"] == [f"arn:aws:s3:::{bucket}/models/*"]
    assert key.startswith("models/")
    region = declared.exports["region"]
    account = declared.exports["imageUri"].split(".")[0]
    assert statements["PullServingImage"]["Resource"] == [
        f"arn:aws:ecr:{region}:{account}:repository/sagemaker-scikit-learn"
    ]
    name = declared.exports["endpointName"]
    assert all(
        f":log-group:/aws/sagemaker/Endpoints/{name}" in r
        for r in statements["WriteEndpointLogs"]["Resource"]
    )
    for statement in statements.values():
        assert statement["Effect"] == "Allow"
        assert all("*" not in action for action in statement["Action"])
    wildcard = {sid for sid, s in statements.items() if s["Resource"] == "*"}
    assert wildcard == {"PullImageAuthorization", "PutSageMakerMetrics"}
    assert statements["PutSageMakerMetrics"]["Condition"] == {
        "StringLike": {"cloudwatch:namespace": "/aws/sagemaker/*"}
    }


def test_the_model_runs_the_prebuilt_image_with_the_container_environment(
    declared: ProgramRun,
) -> None:
    """The Model is auto-named, uses the region's sklearn image, the artifact and our env vars."""
    settings = load_stack_settings(REPO, declared.stack)
    model = declared.one(MODEL)
    container = model.inputs["primaryContainer"]
    assert "name" not in model.inputs
    assert container["image"] == declared.exports["imageUri"]
    assert container["image"].endswith(f"/sagemaker-scikit-learn:{settings.framework.image_tag}")
    assert f".dkr.ecr.{settings.region}.amazonaws.com/" in container["image"]
    assert container["modelDataUrl"] == declared.exports["modelDataUrl"]
    assert container["modelDataUrl"].endswith(declared.one(OBJECT).inputs["key"])
    assert container["environment"] == container_environment(settings.region)
    assert model.inputs["enableNetworkIsolation"] is settings.network_isolation
    assert model.inputs["executionRoleArn"] == declared.one(ROLE).outputs["arn"]
    depends_on = {declared.by_urn(u).type for u in model.dependencies}
    assert {ROLE_POLICY, OBJECT} <= depends_on


def test_the_configuration_has_one_stable_variant(declared: ProgramRun) -> None:
    """One auto-named configuration with variant AllTraffic sized from the settings."""
    settings = load_stack_settings(REPO, declared.stack)
    config = declared.one(CONFIG)
    assert "name" not in config.inputs
    (variant,) = config.inputs["productionVariants"]
    assert variant["variantName"] == DEFAULT_VARIANT
    assert variant["modelName"] == declared.one(MODEL).outputs["name"]
    if settings.serverless is not None:
        assert "instanceType" not in variant
        assert variant["serverlessConfig"]["memorySizeInMb"] == settings.serverless.memory_mb
    else:
        assert variant["instanceType"] == settings.instance_type
        assert variant["initialInstanceCount"] == settings.instance_count


def test_the_endpoint_keeps_its_stable_name(declared: ProgramRun) -> None:
    """The Endpoint alone is named, from endpointName, and points at the new configuration."""
    settings = load_stack_settings(REPO, declared.stack)
    endpoint = declared.one(ENDPOINT)
    assert endpoint.inputs["name"] == settings.endpoint_name
    assert endpoint.inputs["endpointConfigName"] == declared.one(CONFIG).outputs["name"]


def test_every_output_is_exported_under_its_shared_key(declared: ProgramRun) -> None:
    """The stack exports exactly the keys the smoke test reads, with consistent values."""
    assert set(declared.exports) == set(STACK_OUTPUTS)
    assert declared.exports["endpointConfigName"] == declared.one(CONFIG).outputs["name"]
    assert declared.exports["modelName"] == declared.one(MODEL).outputs["name"]
    assert declared.exports["endpointArn"] == declared.one(ENDPOINT).outputs["arn"]


def test_every_taggable_resource_carries_the_stack_tags(declared: ProgramRun) -> None:
    """User tags plus project, stack and artifact sha256 are on every tagged resource."""
    settings = load_stack_settings(REPO, declared.stack)
    for resource_type in (BUCKET, OBJECT, ROLE, MODEL, CONFIG, ENDPOINT):
        tags = declared.one(resource_type).inputs["tags"]
        assert tags["skdeploy:stack"] == declared.stack
        assert tags["skdeploy:artifact-sha256"] == declared.exports["artifactSha256"]
        assert dict(settings.tags).items() <= tags.items()


def names(run: ProgramRun) -> dict[str, str]:
    return {t: run.one(t).outputs["name"] for t in (MODEL, CONFIG, ENDPOINT)}


def test_identical_inputs_give_identical_declarations() -> None:
    """Running the program twice declares the very same resources and inputs."""
    first, second = run_program(REPO, "dev"), run_program(REPO, "dev")
    assert sorted((r.urn, json.dumps(r.inputs, sort_keys=True)) for r in first.resources) == sorted(
        (r.urn, json.dumps(r.inputs, sort_keys=True)) for r in second.resources
    )
    assert first.exports == second.exports


@pytest.mark.parametrize("changed", ["model/model.joblib", "inference/inference.py"])
def test_a_new_artifact_replaces_model_and_configuration_but_not_the_endpoint(
    tmp_path: Path, changed: str
) -> None:
    """A changed model or handler changes key, URL, sha256, Model, config; not the endpoint."""
    project = copy_project(tmp_path)
    before = run_program(project, "dev")
    with (project / changed).open("ab") as handle:
        handle.write(b"\n# a change\n")
    after = run_program(project, "dev")
    for key in ("artifactSha256", "modelDataUrl", "modelName", "endpointConfigName"):
        assert after.exports[key] != before.exports[key], key
    assert after.one(OBJECT).inputs["key"] != before.one(OBJECT).inputs["key"]
    assert after.exports["endpointName"] == before.exports["endpointName"]
    assert after.one(ENDPOINT).inputs["name"] == before.one(ENDPOINT).inputs["name"]


def test_an_instance_count_change_replaces_only_the_configuration(tmp_path: Path) -> None:
    """More instances: same Model, new configuration, same endpoint."""
    before = run_program(REPO, "staging")
    config = read_stack_config(REPO, "staging")
    config["skdeploy:instanceCount"] = 3
    after = run_program(REPO, "staging", config)
    assert names(after)[MODEL] == names(before)[MODEL]
    assert names(after)[CONFIG] != names(before)[CONFIG]
    assert names(after)[ENDPOINT] == names(before)[ENDPOINT]


def test_an_image_override_is_used_and_its_repository_allowed(tmp_path: Path) -> None:
    """imageUri replaces the prebuilt image, and the role may pull from that repository only."""
    config = read_stack_config(REPO, "dev")
    image = "111122223333.dkr.ecr.us-east-1.amazonaws.com/team/sklearn-custom:2024-09"
    config["skdeploy:imageUri"] = image
    run = run_program(REPO, "dev", config)
    assert run.one(MODEL).inputs["primaryContainer"]["image"] == image
    statements = {s["Sid"]: s for s in policy(run.one(ROLE_POLICY).inputs, "policy")["Statement"]}
    assert statements["PullServingImage"]["Resource"] == [
        "arn:aws:ecr:us-east-1:111122223333:repository/team/sklearn-custom"
    ]


def test_bad_settings_stop_the_program_before_any_resource(tmp_path: Path) -> None:
    """Invalid settings raise one listing error and nothing is declared."""
    config = read_stack_config(REPO, "dev")
    config["skdeploy:instanceType"] = "large"
    config["skdeploy:instanceCount"] = 0
    with pytest.raises(Exception, match=r"2 invalid setting\(s\)") as caught:
        run_program(REPO, "dev", config)
    assert "instanceType" in str(caught.value)
    assert "instanceCount" in str(caught.value)


def test_every_component_registers_its_outputs(declared: ProgramRun) -> None:
    """Each skdeploy component, the endpoint and its children, ends with register_outputs."""
    components = {r.urn for r in declared.resources if r.type.startswith("skdeploy:")}
    assert len(components) >= 4
    assert components <= declared.completed


def test_a_secret_stack_output_is_recorded_masked(tmp_path: Path) -> None:
    """The recording shows a secret export as [secret], a plain one as its value."""
    program = tmp_path / "secret_export.py"
    program.write_text(
        'import pulumi\npulumi.export("token", pulumi.Output.secret("s3cr3t"))\n'
        'pulumi.export("plain", pulumi.Output.from_input(3))\n',
        encoding="utf-8",
    )
    run = run_program(tmp_path, "dev", {"aws:region": "eu-west-1"}, program=program)
    assert run.exports == {"token": SECRET, "plain": 3}
