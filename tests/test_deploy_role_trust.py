"""The deploy role cannot make a role, or a bucket, with more power than it was given.

Whoever holds the deploy role's credentials (a merge to ``main`` runs code with them) may create
and change ``skdeploy-*`` roles. Each role it creates must carry the permissions boundary
``deploy/permissions-boundary-policy.json``, which it can neither remove, swap nor edit, and which
allows only what the execution role and the front door's role need: no IAM, no STS. So a role that
trusts the deploy role (or anybody) and carries any inline policy can still do no more than the
boundary. The policies are evaluated with the same ``allows()`` as tests/test_workflows.py, and
linted with parliament, whose findings are each accepted here with a reason.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import pytest

from skdeploy.core.settings import read_stack_config
from skdeploy.tooling.mockrun import MOCK_ACCOUNT_ID, ProgramRun, run_program
from tests.support import REPO, STACKS
from tests.test_workflows import (
    API_EXTENSION,
    API_SETTINGS,
    DEPLOY_DIR,
    DEPLOY_README,
    OPTIONAL_KMS_KEY,
    OPTIONAL_SETTINGS,
    allows,
    as_list,
    load_deploy_policy,
    load_extensions,
    load_policy,
)

BOUNDARY_FILE = DEPLOY_DIR / "permissions-boundary-policy.json"
BOUNDARY_NAME = "skdeploy-permissions-boundary"
BOUNDARY_ARN = f"arn:aws:iam::{MOCK_ACCOUNT_ID}:policy/{BOUNDARY_NAME}"
OTHER_BOUNDARY_ARN = f"arn:aws:iam::{MOCK_ACCOUNT_ID}:policy/AdministratorAccess"
ROLE = f"arn:aws:iam::{MOCK_ACCOUNT_ID}:role/skdeploy-prod-execution-0123abc"
ANY_ROLE = f"arn:aws:iam::{MOCK_ACCOUNT_ID}:role/admin"
WITH_BOUNDARY = {"iam:PermissionsBoundary": BOUNDARY_ARN}
WITH_OTHER_BOUNDARY = {"iam:PermissionsBoundary": OTHER_BOUNDARY_ARN}

Call = tuple[str, str, dict[str, str]]


def deploy_role() -> list[dict[str, Any]]:
    """Every policy the deploy role can carry: base, KMS extension (filled in), api extension."""
    return [load_deploy_policy(), load_extensions(), load_policy(API_EXTENSION)]


def grant_everything(action: str) -> dict[str, Any]:
    """A policy an administrator might attach too: ``action`` on everything, no condition."""
    return {
        "Version": "2012-10-17",
        "Statement": [{"Sid": "Broad", "Effect": "Allow", "Action": action, "Resource": "*"}],
    }


# --- (a) the deploy role's escalation paths are closed ------------------------------------------

#: What an attacker with the deploy role's credentials would try, each with why it must fail.
ATTACKS: dict[str, Call] = {
    "create a role without the boundary": ("iam:CreateRole", ROLE, {}),
    "create a role with another boundary": ("iam:CreateRole", ROLE, WITH_OTHER_BOUNDARY),
    "write an inline policy on a role without the boundary": ("iam:PutRolePolicy", ROLE, {}),
    "write an inline policy on a role with another boundary": (
        "iam:PutRolePolicy",
        ROLE,
        WITH_OTHER_BOUNDARY,
    ),
    "attach a managed policy to a role without the boundary": ("iam:AttachRolePolicy", ROLE, {}),
    "swap the boundary for another": ("iam:PutRolePermissionsBoundary", ROLE, WITH_OTHER_BOUNDARY),
    "remove the boundary": ("iam:DeleteRolePermissionsBoundary", ROLE, WITH_BOUNDARY),
    "remove another role's boundary": ("iam:DeleteRolePermissionsBoundary", ANY_ROLE, {}),
    "pass a role to EC2": ("iam:PassRole", ROLE, {"iam:PassedToService": "ec2.amazonaws.com"}),
    "pass a role without a service": ("iam:PassRole", ROLE, {}),
    "pass an unrelated role to SageMaker": (
        "iam:PassRole",
        ANY_ROLE,
        {"iam:PassedToService": "sagemaker.amazonaws.com"},
    ),
    "delete an artifact": (
        "s3:DeleteObject",
        "arn:aws:s3:::skdeploy-prod-artifacts-abc1234/models/x",
        {},
    ),
    "delete an artifact version": (
        "s3:DeleteObjectVersion",
        "arn:aws:s3:::skdeploy-prod-artifacts-abc1234/models/x",
        {},
    ),
    **{
        f"{verb} the boundary policy": (f"iam:{verb}", BOUNDARY_ARN, {})
        for verb in (
            "CreatePolicy",
            "CreatePolicyVersion",
            "DeletePolicy",
            "DeletePolicyVersion",
            "SetDefaultPolicyVersion",
        )
    },
}

#: Of those, the ones an explicit Deny of the deploy role refuses even where another policy of the
#: role (an administrator's, a future extension) allows the action: everything but the PassRole of
#: an unrelated role, which only the Allow statements' resources scope.
EXPLICITLY_DENIED = sorted(set(ATTACKS) - {"pass an unrelated role to SageMaker"})


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_the_deploy_role_refuses_each_escalation(attack: str) -> None:
    """Creating, changing or passing roles outside the boundary, or editing it, is refused."""
    action, resource, context = ATTACKS[attack]
    assert not allows(deploy_role(), action, resource, context)


@pytest.mark.parametrize("attack", EXPLICITLY_DENIED)
def test_an_explicit_deny_refuses_each_escalation_whatever_else_the_role_carries(
    attack: str,
) -> None:
    """A Deny of the deploy role's own policy wins over an Allow of the same action elsewhere."""
    action, resource, context = ATTACKS[attack]
    assert not allows([*deploy_role(), grant_everything(action)], action, resource, context)


def test_the_deploy_role_creates_and_changes_roles_only_with_the_boundary() -> None:
    """The calls the program makes are allowed exactly with the boundary's ARN in the request."""
    for action in ("iam:CreateRole", "iam:PutRolePolicy", "iam:PutRolePermissionsBoundary"):
        assert allows(deploy_role(), action, ROLE, WITH_BOUNDARY), action
        assert not allows(deploy_role(), action, ROLE, {}), action
        assert not allows(deploy_role(), action, ANY_ROLE, WITH_BOUNDARY), action


def test_the_boundary_arn_in_the_deploy_role_is_the_one_the_setup_creates() -> None:
    """The condition names ``policy/skdeploy-permissions-boundary`` of the role's own account."""
    raw = json.dumps(load_policy(DEPLOY_DIR / "deploy-role-policy.json"))
    assert f"arn:aws:iam::ACCOUNT_ID:policy/{BOUNDARY_NAME}" in raw
    readme = DEPLOY_README.read_text(encoding="utf-8")
    assert BOUNDARY_FILE.name in readme
    assert f"--policy-name {BOUNDARY_NAME}" in readme


BUCKET_POLICY_ACTIONS = (
    "s3:PutBucketPolicy",
    "s3:DeleteBucketPolicy",
    "s3:PutBucketPublicAccessBlock",
    "s3:PutBucketOwnershipControls",
)


@pytest.mark.parametrize(
    "bucket",
    [
        "arn:aws:s3:::other-bucket",
        "arn:aws:s3:::skdeploy-terraform-state",
        "arn:aws:s3:::skdeploy-prod-logs",
    ],
)
def test_bucket_policies_and_public_access_only_on_artifact_buckets(bucket: str) -> None:
    """The role may change who can reach a bucket only for ``skdeploy-*-artifacts-*`` buckets."""
    for action in BUCKET_POLICY_ACTIONS:
        assert not allows(deploy_role(), action, bucket), action
        assert allows(deploy_role(), action, "arn:aws:s3:::skdeploy-prod-artifacts-abc1234")
    # The account-wide Block Public Access stays out of its reach.
    assert not allows(deploy_role(), "s3:PutAccountPublicAccessBlock", "*")


# --- the boundary bounds whatever a created role is given ----------------------------------------


def load_boundary() -> dict[str, Any]:
    """The boundary policy document."""
    return load_policy(BOUNDARY_FILE)


#: What a role with the boundary and an inline policy of ``*`` on ``*``, trusting the attacker,
#: would try; the boundary refuses each, so the role cannot grow.
BEYOND_THE_BOUNDARY: list[Call] = [
    ("iam:CreateRole", ANY_ROLE, {}),
    ("iam:PutRolePolicy", ROLE, WITH_BOUNDARY),
    ("iam:AttachRolePolicy", ROLE, WITH_BOUNDARY),
    ("iam:UpdateAssumeRolePolicy", ROLE, {}),
    ("iam:PassRole", ROLE, {"iam:PassedToService": "sagemaker.amazonaws.com"}),
    ("iam:CreatePolicyVersion", BOUNDARY_ARN, {}),
    ("sts:AssumeRole", ANY_ROLE, {}),
    ("s3:PutBucketPolicy", "arn:aws:s3:::skdeploy-prod-artifacts-abc1234", {}),
    ("s3:GetObject", "arn:aws:s3:::skdeploy-prod-artifacts-abc1234/datacapture/x", {}),
    ("s3:GetObject", "arn:aws:s3:::payroll/models/x", {}),
    ("s3:PutObject", "arn:aws:s3:::payroll/x", {}),
    ("s3:DeleteObject", "arn:aws:s3:::skdeploy-prod-artifacts-abc1234/models/x", {}),
    ("kms:Decrypt", OPTIONAL_KMS_KEY, {}),
    ("sagemaker:CreateModel", "arn:aws:sagemaker:eu-west-1:123456789012:model/skdeploy-x", {}),
    ("sagemaker:InvokeEndpoint", "arn:aws:sagemaker:eu-west-1:123456789012:endpoint/other", {}),
    ("lambda:UpdateFunctionCode", "arn:aws:lambda:eu-west-1:123456789012:function:skdeploy-x", {}),
    ("cloudwatch:PutMetricData", "*", {"cloudwatch:namespace": "Billing"}),
    ("logs:PutLogEvents", "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/lambda/other", {}),
    ("ec2:RunInstances", "*", {}),
]


@pytest.mark.parametrize("call", BEYOND_THE_BOUNDARY, ids=lambda c: f"{c[0]} {c[1]}")
def test_a_created_role_can_do_nothing_beyond_the_boundary(call: Call) -> None:
    """A role is bounded: its inline ``*`` on ``*`` still gets nothing the boundary refuses."""
    action, resource, context = call
    inline = grant_everything("*")
    assert allows([inline], action, resource, context)
    assert not allows([load_boundary()], action, resource, context)


def test_the_boundary_grants_no_iam_sts_or_policy_write() -> None:
    """No action of IAM or STS, and no statement that could make a role or a bucket grow."""
    actions = [a for s in load_boundary()["Statement"] for a in as_list(s["Action"])]
    assert actions
    assert [a for a in actions if a.split(":")[0] in ("iam", "sts", "organizations")] == []
    assert [a for a in actions if "Policy" in a or "*" in a] == []


# --- (b) every role the program declares carries the boundary ------------------------------------


def every_run() -> list[ProgramRun]:
    """The committed stacks, prod with every optional setting, and prod with the front door."""
    prod = read_stack_config(REPO, "prod")
    return [
        *(run_program(REPO, stack) for stack in STACKS),
        run_program(REPO, "prod", {**prod, **OPTIONAL_SETTINGS}),
        run_program(REPO, "prod", {**prod, **API_SETTINGS}),
        run_program(REPO, "prod", {**prod, **OPTIONAL_SETTINGS, **API_SETTINGS}),
    ]


@pytest.fixture(scope="module")
def runs() -> list[ProgramRun]:
    """The program under Pulumi mocks, once per configuration."""
    return every_run()


def test_every_role_the_program_declares_carries_the_boundary(runs: list[ProgramRun]) -> None:
    """Execution roles and the front door's role name the boundary of the caller's account."""
    roles = [r for run in runs for r in run.by_type("aws:iam/role:Role")]
    names = {r.name.rsplit("-", 1)[-1] for r in roles}
    assert {"execution", "function"} <= names  # both kinds of role are among them
    missing = [r.name for r in roles if r.inputs.get("permissionsBoundary") != BOUNDARY_ARN]
    assert missing == []


def role_policy_calls(run: ProgramRun) -> list[Call]:
    """Each (action, resource, context) the inline policies of ``run``'s roles grant.

    The context is a request the statement's own conditions accept (``*`` in a condition value
    stands for any text); KMS calls are made through S3 (the execution role decrypts the artifact
    and encrypts captures with S3 server-side encryption), so they carry ``kms:ViaService``.
    """
    region = run.resources[0].outputs.get("region") or "eu-west-1"
    calls: list[Call] = []
    for policy in run.by_type("aws:iam/rolePolicy:RolePolicy"):
        for statement in json.loads(policy.inputs["policy"])["Statement"]:
            assert statement["Effect"] == "Allow"
            context = {
                key: str(value).replace("*", "x")
                for operator in statement.get("Condition", {}).values()
                for key, value in operator.items()
            }
            for action in as_list(statement["Action"]):
                extra = (
                    {"kms:ViaService": f"s3.{region}.amazonaws.com"}
                    if action.startswith("kms:")
                    else {}
                )
                calls += [(action, r, {**context, **extra}) for r in as_list(statement["Resource"])]
    return calls


def test_the_boundary_allows_everything_the_programs_roles_are_given(
    runs: list[ProgramRun],
) -> None:
    """The boundary does not cut what a deploy needs: every grant of every role policy is in it."""
    calls = [c for run in runs for c in role_policy_calls(run)]
    assert {c[0] for c in calls} >= {"kms:Decrypt", "ec2:CreateNetworkInterface", "s3:PutObject"}
    refused = [c[:2] for c in calls if not allows([load_boundary()], *c)]
    assert refused == []
    # ... and grants no action that none of them is given.
    used = {c[0] for c in calls}
    granted = {a for s in load_boundary()["Statement"] for a in as_list(s["Action"])}
    assert granted - used == set()


# --- (c) parliament ------------------------------------------------------------------------------

#: Each finding parliament (with its community auditors) reports on deploy/*.json, filled in as
#: deploy/README.md's setup fills them, keyed by (file, issue, what it names); the reason it is
#: accepted. deploy/README.md ("parliament") explains each too.
ACCEPTED_FINDINGS: dict[tuple[str, str, str], str] = {
    (
        "deploy-role-trust-policy.json",
        "MALFORMED",
        "Statement contains neither Resource nor NotResource",
    ): (
        "a trust policy has a Principal and no Resource; parliament checks identity policies only "
        "(its statement.py says trust policies would break its other checks)"
    ),
    (
        "preview-role-trust-policy.json",
        "MALFORMED",
        "Statement contains neither Resource nor NotResource",
    ): ("the same: a trust policy, which parliament does not model"),
    (
        "deploy-role-trust-policy.json",
        "UNKNOWN_FEDERATION_SOURCE",
        f"arn:aws:iam::{MOCK_ACCOUNT_ID}:oidc-provider/token.actions.githubusercontent.com",
    ): "parliament knows SAML providers and four web identity providers, not IAM OIDC providers",
    (
        "preview-role-trust-policy.json",
        "UNKNOWN_FEDERATION_SOURCE",
        f"arn:aws:iam::{MOCK_ACCOUNT_ID}:oidc-provider/token.actions.githubusercontent.com",
    ): "the same GitHub OIDC provider",
    ("deploy-role-policy-api.json", "UNKNOWN_ACTION", "Unknown action apigateway:TagResource"): (
        "API Gateway authorises creating a tagged stage as apigateway:TagResource, an action the "
        "Service Authorization Reference (parliament's source) does not list; deploy/README.md"
    ),
    (
        "deploy-role-policy.json",
        "MISMATCHED_TYPE_BUT_USABLE",
        "Type mismatch: StringEquals requires a value of type String but given Arn",
    ): (
        "iam:PermissionsBoundary is an ARN key; StringEquals compares it exactly (no wildcard), "
        "as the IAM User Guide's own boundary-delegation example does; parliament calls it usable"
    ),
    (
        "deploy-role-policy.json",
        "MISMATCHED_TYPE_BUT_USABLE",
        "Type mismatch: StringNotEquals requires a value of type String but given Arn",
    ): "the same key in the Deny that refuses any other boundary",
    **{
        (
            "deploy-role-policy.json",
            "RESOURCE_POLICY_PRIVILEGE_ESCALATION",
            f"Possible resource policy privilege escalation on arn:aws:s3:::skdeploy-*-artifacts-* "
            f"due to s3:{action} not being allowed, but does allow s3:PutBucketPolicy",
        ): (
            "the program writes the artifact bucket's (TLS-only) policy, so the role can write "
            "one that grants more; ArtifactsAreNeverDeleted denies the role itself deletion, "
            "account-level Block Public Access (Setup) refuses public policies, and sharing "
            "with another account is residual risk (deploy/README.md)"
        )
        for action in ("DeleteObject", "GetObject", "PutObject")
    },
    (
        "deploy-role-policy.json",
        "RESOURCE_STAR",
        "cloudwatch:DeleteAlarms,cloudwatch:DescribeAlarms,cloudwatch:PutMetricAlarm",
    ): "AlarmCallsThatNameNoAlarm: Application Auto Scaling's checks name no alarm (README)",
    (
        "deploy-role-policy.json",
        "PERMISSIONS_MANAGEMENT_ACTIONS",
        "iam:createrole,iam:createservicelinkedrole,iam:deleterole,iam:deleterolepolicy,"
        "iam:passrole,iam:putrolepermissionsboundary,iam:putrolepolicy,"
        "iam:updateassumerolepolicy,iam:updaterole,s3:deletebucketpolicy,s3:putbucketpolicy,"
        "s3:putbucketpublicaccessblock",
    ): (
        "the program creates the execution and front door roles and the bucket's policy; each "
        "role write needs the boundary, PassRole goes to SageMaker or Lambda only, bucket "
        "access controls reach artifact buckets only (tests above)"
    ),
    ("deploy-role-policy-extensions.json", "PERMISSIONS_MANAGEMENT_ACTIONS", "kms:creategrant"): (
        "SageMaker needs a grant on the stack key for the endpoint's storage; only on that key, "
        "only for AWS resources (kms:GrantIsForAWSResource)"
    ),
    ("permissions-boundary-policy.json", "CREDENTIALS_EXPOSURE", "ecr:getauthorizationtoken"): (
        "SageMaker pulls the serving image with the execution role; the token reads only the "
        "repositories PullServingImage allows"
    ),
    (
        "permissions-boundary-policy.json",
        "PERMISSIONS_MANAGEMENT_ACTIONS",
        "ec2:createnetworkinterfacepermission,ec2:deletenetworkinterfacepermission",
    ): "SageMaker attaches its network interfaces in the stack's VPC with the execution role",
    (
        "permissions-boundary-policy.json",
        "RESOURCE_STAR",
        "ec2:CreateNetworkInterface,ec2:CreateNetworkInterfacePermission,ec2:DeleteNetworkInterface",
    ): (
        "ManageVpcNetworkInterfaces mirrors the execution role (skdeploy/core/iam.py): the "
        "subnets and security groups are stack settings and the interfaces get random ids"
    ),
}


def fill_placeholders(text: str) -> str:
    """The document as the administrator installs it (deploy/README.md, Setup step 2)."""
    key_id = OPTIONAL_KMS_KEY.split("/")[-1]
    return (
        text.replace("ACCOUNT_ID", MOCK_ACCOUNT_ID)
        .replace("OWNER/REPO", "acme/skdeploy")
        .replace("KMS_KEY_ID", key_id)
    )


def parliament_findings(path: Path) -> set[tuple[str, str, str]]:
    """parliament's findings on one file, each as (file, issue, what it names)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # parliament imports pkg_resources, which warns
        from parliament import analyze_policy_string

    policy = analyze_policy_string(
        fill_placeholders(path.read_text(encoding="utf-8")), include_community_auditors=True
    )
    found = set()
    for finding in policy.findings:
        # The community auditors name their actions in the location, the others in the detail.
        detail = finding.detail or finding.location.get("actions") or ""
        if isinstance(detail, list):
            detail = ",".join(sorted(detail))
        found.add((path.name, finding.issue, str(detail)))
    return found


def test_parliament_finds_nothing_but_the_accepted_findings() -> None:
    """Every finding on every deploy/*.json is listed above with its reason; none is stale."""
    found = {f for path in sorted(DEPLOY_DIR.glob("*.json")) for f in parliament_findings(path)}
    assert sorted(found - set(ACCEPTED_FINDINGS)) == []
    assert sorted(set(ACCEPTED_FINDINGS) - found) == []
    readme = DEPLOY_README.read_text(encoding="utf-8")
    assert [issue for _, issue, _ in ACCEPTED_FINDINGS if f"`{issue}`" not in readme] == []
