"""The declared resources, as AWS API requests: botocore's own validation and moto accept them."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator

import boto3
import pytest
from botocore.validate import ParamValidator
from moto import mock_aws

from skdeploy.core.settings import read_stack_config
from skdeploy.tooling.mockrun import ProgramRun, run_program
from tests import aws_requests
from tests.support import REPO, STACKS, copy_project


@pytest.fixture(scope="module", params=STACKS)
def declared(request: pytest.FixtureRequest) -> ProgramRun:
    """The program's declarations for one committed stack."""
    return run_program(REPO, request.param)


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """moto in-process, with dummy credentials so that no real account can be reached."""
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
    }.items():
        monkeypatch.setenv(key, value)
    with mock_aws():
        yield


SAGEMAKER_MODEL = boto3.client(
    "sagemaker", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
).meta.service_model


def requests(run: ProgramRun) -> dict[str, dict]:
    """The three SageMaker create calls, as the provider would send them."""
    calls = {
        "CreateModel": aws_requests.create_model(run.one("aws:sagemaker/model:Model")),
        "CreateEndpointConfig": aws_requests.create_endpoint_config(
            run.one("aws:sagemaker/endpointConfiguration:EndpointConfiguration")
        ),
        "CreateEndpoint": aws_requests.create_endpoint(run.one("aws:sagemaker/endpoint:Endpoint")),
    }
    return {
        operation: aws_requests.coerce(
            params, SAGEMAKER_MODEL.operation_model(operation).input_shape
        )
        for operation, params in calls.items()
    }


def test_requests_pass_botocore_parameter_validation(declared: ProgramRun) -> None:
    """CreateModel/CreateEndpointConfig/CreateEndpoint built from the declarations validate."""
    model = SAGEMAKER_MODEL
    validator = ParamValidator()
    for operation, params in requests(declared).items():
        report = validator.validate(params, model.operation_model(operation).input_shape)
        assert not report.has_errors(), f"{operation}: {report.generate_report()}"


def test_a_broken_request_is_caught_by_the_validation() -> None:
    """The validation used above does refuse a bad request (so passing it means something)."""
    model = SAGEMAKER_MODEL
    report = ParamValidator().validate(
        {
            "EndpointConfigName": "x",
            "ProductionVariants": [{"VariantName": "a", "InitialInstanceCount": "2"}],
        },
        model.operation_model("CreateEndpointConfig").input_shape,
    )
    assert report.has_errors()


def test_moto_accepts_the_whole_stack(declared: ProgramRun, aws: None) -> None:
    """Bucket setup, policies, role, model, configuration and endpoint are accepted by moto."""
    region = declared.exports["region"]
    s3 = boto3.client("s3", region_name=region)
    iam = boto3.client("iam", region_name=region)
    sagemaker = boto3.client("sagemaker", region_name=region)

    bucket = declared.one("aws:s3/bucket:Bucket").outputs["bucket"]
    location = (
        {}
        if region == "us-east-1"
        else {"CreateBucketConfiguration": {"LocationConstraint": region}}
    )
    s3.create_bucket(Bucket=bucket, **location)
    block = declared.one("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock").inputs
    s3.put_public_access_block(
        Bucket=bucket,
        PublicAccessBlockConfiguration={
            key: value
            for key, value in aws_requests.pascal(block).items()
            if key
            in ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets")
        },
    )
    encryption = declared.one(
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
    ).inputs
    s3.put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={"Rules": aws_requests.pascal(encryption["rules"])},
    )
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    key = declared.one("aws:s3/bucketObjectv2:BucketObjectv2").inputs["key"]
    s3.put_object(Bucket=bucket, Key=key, Body=b"artifact")
    # The program uploads after the policy; moto ignores policy conditions ("Conditions are not
    # taken into account", moto/s3/models.py), so its TLS-only Deny would refuse even an HTTPS
    # upload. The policy is applied last here; its condition is asserted in test_program.py.
    s3.put_bucket_policy(
        Bucket=bucket, Policy=declared.one("aws:s3/bucketPolicy:BucketPolicy").inputs["policy"]
    )

    role = declared.one("aws:iam/role:Role")
    iam.create_role(
        RoleName=role.outputs["name"], AssumeRolePolicyDocument=role.inputs["assumeRolePolicy"]
    )
    iam.put_role_policy(
        RoleName=role.outputs["name"],
        PolicyName="execution",
        PolicyDocument=declared.one("aws:iam/rolePolicy:RolePolicy").inputs["policy"],
    )

    calls = requests(declared)
    sagemaker.create_model(**calls["CreateModel"])
    sagemaker.create_endpoint_config(**calls["CreateEndpointConfig"])
    sagemaker.create_endpoint(**calls["CreateEndpoint"])
    described = sagemaker.describe_endpoint(EndpointName=declared.exports["endpointName"])
    assert described["EndpointConfigName"] == declared.exports["endpointConfigName"]
    model = sagemaker.describe_model(ModelName=declared.exports["modelName"])
    assert model["PrimaryContainer"]["ModelDataUrl"] == f"s3://{bucket}/{key}"
    assert s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "IgnorePublicAcls": True,
        "BlockPublicPolicy": True,
        "RestrictPublicBuckets": True,
    }


def test_moto_refuses_a_malformed_policy(aws: None) -> None:
    """moto's IAM validator rejects a broken policy, so its acceptance above is a real check."""
    iam = boto3.client("iam", region_name="us-east-1")
    iam.create_role(
        RoleName="r",
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
    )
    with pytest.raises(iam.exceptions.MalformedPolicyDocumentException):
        iam.put_role_policy(
            RoleName="r",
            PolicyName="p",
            PolicyDocument=json.dumps(
                {"Version": "2012-10-17", "Statement": [{"Effect": "Allow"}]}
            ),
        )


def test_several_variants_and_a_shadow_pass_botocore_and_moto(tmp_path, aws: None) -> None:
    """CreateEndpointConfig with weighted variants and a shadow validates and is accepted."""
    project = copy_project(tmp_path)
    (project / "challenger").mkdir()
    shutil.copy(project / "model" / "model.joblib", project / "challenger" / "model.joblib")
    (project / "challenger" / "notes.joblib").write_bytes(
        (project / "model" / "model.joblib").read_bytes()
    )
    config = read_stack_config(project, "staging")
    config["skdeploy:variants"] = [
        {"name": "champion", "weight": 9},
        {"name": "challenger", "modelDir": "challenger", "weight": 1},
    ]
    config["skdeploy:shadow"] = {
        "name": "shadow",
        "modelDir": "challenger",
        "modelFiles": ["model.joblib"],
    }
    run = run_program(project, "staging", config)
    (config_resource,) = run.by_type("aws:sagemaker/endpointConfiguration:EndpointConfiguration")
    params = aws_requests.coerce(
        aws_requests.create_endpoint_config(config_resource),
        SAGEMAKER_MODEL.operation_model("CreateEndpointConfig").input_shape,
    )
    assert [v["VariantName"] for v in params["ProductionVariants"]] == ["champion", "challenger"]
    assert [v["VariantName"] for v in params["ShadowProductionVariants"]] == ["shadow"]
    report = ParamValidator().validate(
        params, SAGEMAKER_MODEL.operation_model("CreateEndpointConfig").input_shape
    )
    assert not report.has_errors(), report.generate_report()

    sagemaker = boto3.client("sagemaker", region_name=run.exports["region"])
    model_shape = SAGEMAKER_MODEL.operation_model("CreateModel").input_shape
    for model in run.by_type("aws:sagemaker/model:Model"):
        sagemaker.create_model(**aws_requests.coerce(aws_requests.create_model(model), model_shape))
    sagemaker.create_endpoint_config(**params)
    described = sagemaker.describe_endpoint_config(EndpointConfigName=params["EndpointConfigName"])
    assert {v["VariantName"] for v in described["ProductionVariants"]} == {"champion", "challenger"}
