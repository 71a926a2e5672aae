"""CI/CD: the workflows are valid, pinned and least-privileged, promote one artifact through the
stages, and the OIDC roles' IAM documents grant what the stacks declare and nothing more.

The Pulumi CLI cannot run here, so the steps that call it are run with a stand-in ``pulumi`` on
PATH that answers ``pulumi stack output <key> --stack <name>`` and refuses anything else: what is
under test is the workflow's own shell logic, not the CLI.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from skdeploy.artifact import build_for_settings
from skdeploy.constants import OUTPUT_ARTIFACT_SHA256
from skdeploy.mockrun import DeclaredResource, run_program
from skdeploy.settings import load_stack_settings
from tests.support import REPO, STACKS

WORKFLOWS = REPO / ".github" / "workflows"
PREVIEW = WORKFLOWS / "preview.yml"
DEPLOY = WORKFLOWS / "deploy.yml"
DEPLOY_DIR = REPO / "deploy"
DEPLOY_README = DEPLOY_DIR / "README.md"
DEPLOY_POLICY = DEPLOY_DIR / "deploy-role-policy.json"
PREVIEW_POLICY = DEPLOY_DIR / "preview-role-policy.json"
DEPLOY_TRUST = DEPLOY_DIR / "deploy-role-trust-policy.json"
PREVIEW_TRUST = DEPLOY_DIR / "preview-role-trust-policy.json"
TRUST_POLICIES = (DEPLOY_TRUST, PREVIEW_TRUST)
PERMISSION_POLICIES = tuple(sorted(p for p in DEPLOY_DIR.glob("*.json") if p not in TRUST_POLICIES))

#: Statements that may name ``Resource: "*"``: AWS offers no resource-level permission for their
#: actions (Service Authorization Reference). deploy/README.md explains each under "Justification".
JUSTIFIED_WILDCARD_SIDS = frozenset(
    {
        "DescribeScalingHasNoResourceLevelPermissions",
        "DescribeLogGroupsHasNoResourceLevelPermissions",
    }
)

OIDC_ISSUER = "token.actions.githubusercontent.com"
GITHUB_ACTION_PIN = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+(/[A-Za-z0-9_./-]+)?@[0-9a-f]{40}")
ACTION_NAME = re.compile(r"[a-z0-9-]+:[A-Za-z0-9]+")
SHA256 = "0123456789abcdef" * 4
OTHER_SHA256 = "fedcba9876543210" * 4

Completed = subprocess.CompletedProcess[str]
Shell = Callable[..., Completed]


# --- helpers ----------------------------------------------------------------------------------


def tool(name: str) -> str:
    """A dev tool installed next to this interpreter (the project's .venv), or on PATH."""
    sibling = Path(sys.executable).with_name(name)
    found = str(sibling) if sibling.exists() else shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed; it is a dev dependency in pyproject.toml")
    return found


def load_workflow(path: Path) -> dict[str, Any]:
    """A workflow as data; YAML 1.1 reads the ``on:`` key as ``True``, so it is renamed back."""
    data: dict[Any, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    if True in data:
        data["on"] = data.pop(True)
    return {str(key): value for key, value in data.items()}


def steps_using(job: dict[str, Any], action: str) -> list[dict[str, Any]]:
    """The steps of ``job`` that use ``action`` (owner/repo), at any pinned ref."""
    return [s for s in job.get("steps", []) if str(s.get("uses", "")).startswith(f"{action}@")]


def step_named(job: dict[str, Any], name: str) -> dict[str, Any]:
    """The step of ``job`` called ``name``."""
    found: list[dict[str, Any]] = [s for s in job["steps"] if s.get("name") == name]
    assert len(found) == 1, f"expected one step named {name!r}, found {len(found)}"
    return found[0]


def needs(job: dict[str, Any]) -> set[str]:
    """The jobs ``job`` waits for."""
    value = job.get("needs", [])
    return {value} if isinstance(value, str) else set(value)


def environment_name(job: dict[str, Any]) -> str | None:
    """The deployment environment of ``job``, in either of its two spellings."""
    value = job.get("environment")
    return value.get("name") if isinstance(value, dict) else value


def load_policy(path: Path) -> dict[str, Any]:
    """One IAM policy document."""
    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return document


def as_list(value: str | list[str]) -> list[str]:
    """IAM allows a single string wherever a list is allowed."""
    return [value] if isinstance(value, str) else list(value)


def iam_pattern(pattern: str) -> re.Pattern[str]:
    """IAM wildcard matching: ``*`` is any run of characters (``/`` and ``:`` too), ``?`` one."""
    return re.compile(
        "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    )


def allows(
    policies: Iterable[dict[str, Any]],
    action: str,
    resource: str,
    context: dict[str, str] | None = None,
) -> bool:
    """Whether an Allow statement grants ``action`` on ``resource`` and no Deny refuses it.

    Conditions are evaluated for ``StringEquals`` against ``context``; a statement with any other
    condition operator never matches, so the check errs towards "not allowed".
    """
    context = context or {}

    def matches(statement: dict[str, Any]) -> bool:
        actions = as_list(statement.get("Action", []))
        resources = as_list(statement.get("Resource", []))
        if not any(iam_pattern(a.lower()).fullmatch(action.lower()) for a in actions):
            return False
        if not any(iam_pattern(r).fullmatch(resource) for r in resources):
            return False
        for operator, keys in statement.get("Condition", {}).items():
            if operator != "StringEquals":
                return False
            for key, expected in keys.items():
                if context.get(key) not in as_list(expected):
                    return False
        return True

    statements = [s for p in policies for s in p["Statement"]]
    if any(s["Effect"] == "Deny" and matches(s) for s in statements):
        return False
    return any(s["Effect"] == "Allow" and matches(s) for s in statements)


# --- 1. schema, zizmor, pins ------------------------------------------------------------------


def all_workflows() -> list[Path]:
    """Every workflow of the repository (this module owns preview.yml and deploy.yml)."""
    found = sorted(WORKFLOWS.glob("*.y*ml"))
    assert PREVIEW in found
    assert DEPLOY in found
    return found


@pytest.mark.parametrize("workflow", all_workflows(), ids=lambda p: p.name)
def test_workflow_is_valid_against_the_github_workflow_schema(workflow: Path) -> None:
    """check-jsonschema's built-in (offline) GitHub workflow schema accepts every workflow."""
    result = subprocess.run(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", str(workflow)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_zizmor_finds_nothing_of_medium_or_high_severity() -> None:
    """zizmor's offline audits report no medium or high finding on the workflows."""
    result = subprocess.run(
        [tool("zizmor"), "--offline", "--no-progress", "--format", "json", str(WORKFLOWS)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # 0: no findings; 10 + n: findings whose highest severity is n; anything else is a failure.
    assert result.returncode == 0 or 10 <= result.returncode <= 14, result.stderr
    findings = json.loads(result.stdout)
    serious = [
        f"{f['ident']} ({f['determinations']['severity']}): {f['desc']}"
        for f in findings
        if f["determinations"]["severity"] in ("Medium", "High")
    ]
    assert serious == []


def test_every_action_is_pinned_to_a_full_commit_sha_with_its_version() -> None:
    """Each `uses:` names a 40-hex commit, a `# vX.Y.Z` comment, one SHA per action, as listed."""
    readme = DEPLOY_README.read_text(encoding="utf-8")
    pins: dict[str, set[str]] = {}
    for workflow in all_workflows():
        lines = [
            line for line in workflow.read_text(encoding="utf-8").splitlines() if "uses:" in line
        ]
        parsed = [
            step["uses"]
            for job in load_workflow(workflow)["jobs"].values()
            for step in job.get("steps", [])
            if "uses" in step
        ]
        assert len(lines) == len(parsed), f"{workflow.name}: a `uses:` the line scan misses"
        for line in lines:
            match = re.fullmatch(r"\s*(?:-\s+)?uses:\s*(\S+)\s+#\s*(v\d+\.\d+\.\d+)\s*", line)
            assert match, f"{workflow.name}: not `uses: owner/repo@<sha> # vX.Y.Z`: {line.strip()}"
            ref, version = match.groups()
            assert GITHUB_ACTION_PIN.fullmatch(ref), f"{workflow.name}: not pinned by SHA: {ref}"
            pins.setdefault(ref.split("@")[0], set()).add(f"{ref} # {version}")
    for action, refs in pins.items():
        assert len(refs) == 1, f"{action} is pinned to more than one commit: {sorted(refs)}"
        (ref,) = refs
        sha = ref.split("@")[1].split()[0]
        assert sha in readme, f"{ref} is not in the pinned-actions table of deploy/README.md"


def test_no_expression_is_expanded_inside_a_run_script() -> None:
    """Contexts reach shell scripts through `env:` only, never as `${{ }}` inside `run:`."""
    for workflow in all_workflows():
        for name, job in load_workflow(workflow)["jobs"].items():
            for step in job.get("steps", []):
                assert "${{" not in step.get("run", ""), (
                    f"{workflow.name}:{name}:{step.get('name')}"
                )


# --- 2. preview.yml ----------------------------------------------------------------------------


def test_preview_runs_on_pull_request_only() -> None:
    """preview.yml triggers on pull_request alone: never pull_request_target or workflow_run."""
    triggers = load_workflow(PREVIEW)["on"]
    names = {triggers} if isinstance(triggers, str) else set(triggers)
    assert names == {"pull_request"}


def test_preview_permissions_are_least_privilege() -> None:
    """Nothing at the top; write scopes only where used, and only for same-repository PRs."""
    workflow = load_workflow(PREVIEW)
    assert workflow["permissions"] in ({}, {"contents": "read"})
    same_repo = "github.event.pull_request.head.repo.full_name == github.repository"
    for name, job in workflow["jobs"].items():
        permissions = job.get("permissions")
        assert isinstance(permissions, dict), f"{name}: no explicit job permissions"
        writes = {scope for scope, level in permissions.items() if level == "write"}
        assert writes <= {"pull-requests", "id-token"}, f"{name}: {writes}"
        uses_aws = bool(steps_using(job, "aws-actions/configure-aws-credentials"))
        assert ("id-token" in writes) == uses_aws, f"{name}: id-token without OIDC, or OIDC without"
        scripts = " ".join(s.get("run", "") for s in job["steps"])
        comments = "gh api" in scripts or any(
            str(s.get("with", {}).get("comment-on-pr")).lower() == "true"
            for s in steps_using(job, "pulumi/actions")
        )
        assert ("pull-requests" in writes) == comments, f"{name}: pull-requests: write unused"
        if writes:
            assert same_repo in str(job.get("if", "")), f"{name}: writes on fork pull requests"
        if "pull-requests" in writes and not uses_aws:
            assert not steps_using(job, "actions/checkout"), (
                f"{name}: runs PR code with a write token"
            )


def test_preview_cancels_superseded_runs_of_the_same_pull_request() -> None:
    """A new push to a pull request cancels the run still going for that pull request."""
    concurrency = load_workflow(PREVIEW)["concurrency"]
    assert "github.event.pull_request.number" in concurrency["group"]
    assert concurrency["cancel-in-progress"] is True


def test_preview_plans_every_stack_against_the_base_commit() -> None:
    """The plan job checks the base out beside the head and renders `--against` markdown."""
    workflow = load_workflow(PREVIEW)
    plan = workflow["jobs"]["plan"]
    checkouts = steps_using(plan, "actions/checkout")
    paths = {s["with"]["path"] for s in checkouts}
    base = [s for s in checkouts if "base" in str(s["with"].get("ref", ""))]
    assert len(checkouts) == 2
    assert len(paths) == 2
    assert len(base) == 1
    script = " ".join(s.get("run", "") for s in plan["steps"])
    assert "skdeploy plan" in script
    assert "--against" in script
    assert "--markdown" in script
    assert "GITHUB_STEP_SUMMARY" in script
    assert sorted(workflow["env"]["STACKS"].split()) == STACKS
    comment = workflow["jobs"]["comment"]
    assert needs(comment) == {"plan"}
    assert (
        "<!-- skdeploy-plan -->"
        in step_named(comment, "Post or update the sticky plan comment")["run"]
    )


def test_preview_runs_pulumi_preview_per_stack_where_aws_is_configured() -> None:
    """The AWS preview job is opt-in by variable and runs pulumi preview with a diff comment."""
    job = load_workflow(PREVIEW)["jobs"]["pulumi-preview"]
    assert "vars.AWS_PREVIEW_ROLE_ARN != ''" in job["if"]
    assert sorted(job["strategy"]["matrix"]["stack"]) == STACKS
    (pulumi,) = steps_using(job, "pulumi/actions")
    assert pulumi["with"]["command"] == "preview"
    assert pulumi["with"]["diff"] is True
    assert pulumi["with"]["comment-on-pr"] is True
    assert pulumi["with"]["stack-name"].endswith("/skdeploy/${{ matrix.stack }}")
    (aws,) = steps_using(job, "aws-actions/configure-aws-credentials")
    assert aws["with"]["role-to-assume"] == "${{ vars.AWS_PREVIEW_ROLE_ARN }}"


# --- 3. deploy.yml -----------------------------------------------------------------------------

STAGES = ("dev", "staging", "prod")


def test_deploy_promotes_dev_then_staging_then_prod() -> None:
    """On main, tests gate dev, dev gates staging, staging gates prod; up, then smoke, per stage."""
    workflow = load_workflow(DEPLOY)
    assert workflow["on"]["push"]["branches"] == ["main"]
    assert "workflow_dispatch" in workflow["on"]
    jobs = workflow["jobs"]
    assert "test" in needs(jobs["dev"])
    assert "dev" in needs(jobs["staging"])
    assert "staging" in needs(jobs["prod"])
    for stage in STAGES:
        job = jobs[stage]
        assert job["env"]["STACK"] == stage
        assert job["env"]["PULUMI_STACK"].endswith(f"/skdeploy/{stage}")
        names = [s.get("name") for s in job["steps"]]
        (up,) = steps_using(job, "pulumi/actions")
        assert up["with"]["command"] == "up"
        assert up["with"]["stack-name"] == "${{ env.PULUMI_STACK }}"
        smoke = step_named(job, "Smoke test")
        assert smoke["run"] == 'uv run skdeploy smoke --stack "$STACK"'
        assert names.index(up["name"]) < names.index("Smoke test")


def test_deploy_runs_one_at_a_time_with_read_and_oidc_permissions_only() -> None:
    """No deploy is cancelled mid-way; jobs get contents: read and id-token: write at most."""
    workflow = load_workflow(DEPLOY)
    assert workflow["concurrency"]["cancel-in-progress"] is False
    assert workflow["permissions"] in ({}, {"contents": "read"})
    for name, job in workflow["jobs"].items():
        permissions = job["permissions"]
        assert set(permissions.items()) <= {("contents", "read"), ("id-token", "write")}, name
        if name in STAGES:
            assert permissions == {"contents": "read", "id-token": "write"}


def test_each_stage_runs_in_its_environment_and_the_trust_policies_know_them() -> None:
    """dev/staging/prod (prod's reviewers) and preview are environments the OIDC trust accepts."""
    deploy_jobs = load_workflow(DEPLOY)["jobs"]
    preview_jobs = load_workflow(PREVIEW)["jobs"]
    assert environment_name(deploy_jobs["prod"]) == "prod"
    deploy_subjects = set(trusted_subjects(load_policy(DEPLOY_TRUST)))
    preview_subjects = set(trusted_subjects(load_policy(PREVIEW_TRUST)))
    for stage in STAGES:
        assert environment_name(deploy_jobs[stage]) == stage
        assert f"repo:OWNER/REPO:environment:{stage}" in deploy_subjects
    preview_env = environment_name(preview_jobs["pulumi-preview"])
    assert preview_subjects == {f"repo:OWNER/REPO:environment:{preview_env}"}
    assert not deploy_subjects & preview_subjects


@pytest.fixture
def shell(tmp_path: Path) -> Shell:
    """Runs one step's script as Actions does (bash -eo pipefail), with a stand-in ``pulumi``."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    pulumi = bin_dir / "pulumi"
    pulumi.write_text(
        "#!/bin/sh\n"
        f'[ "$1 $2 $3 $4" = "stack output {OUTPUT_ARTIFACT_SHA256} --stack" ] || exit 3\n'
        '[ "$5" = "$PULUMI_STACK" ] || exit 4\n'
        'printf "%s\\n" "$FAKE_STACK_OUTPUT"\n',
        encoding="utf-8",
    )
    pulumi.chmod(pulumi.stat().st_mode | stat.S_IXUSR)

    def run(script: str, *, prepend: Sequence[str] = (), **env: str) -> Completed:
        output = tmp_path / "github_output"
        output.write_text("", encoding="utf-8")
        environment = {
            "PATH": os.pathsep.join([str(bin_dir), *prepend, os.environ["PATH"]]),
            "HOME": str(tmp_path),
            "GITHUB_OUTPUT": str(output),
            "RUNNER_TEMP": str(tmp_path),
            **env,
        }
        return subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
            env=environment,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    return run


@pytest.mark.parametrize(
    ("stage", "step"),
    [
        ("staging", "Assert staging serves the artifact dev serves"),
        ("prod", "Assert prod serves the artifact dev serves"),
    ],
)
def test_staging_and_prod_refuse_an_artifact_other_than_devs(
    stage: str, step: str, shell: Shell
) -> None:
    """After `pulumi up`, the stage fails unless its artifactSha256 output equals dev's."""
    job = load_workflow(DEPLOY)["jobs"][stage]
    assert "dev" in needs(job)
    assertion = step_named(job, step)
    assert assertion["env"]["DEV_SHA256"] == "${{ needs.dev.outputs.artifact_sha256 }}"
    names = [s.get("name") for s in job["steps"]]
    assert names.index("pulumi up") < names.index(step) < names.index("Smoke test")
    stack = {"STACK": stage, "PULUMI_STACK": f"acme/skdeploy/{stage}"}
    same = shell(assertion["run"], **stack, DEV_SHA256=SHA256, FAKE_STACK_OUTPUT=SHA256)
    assert same.returncode == 0, same.stdout + same.stderr
    other = shell(assertion["run"], **stack, DEV_SHA256=SHA256, FAKE_STACK_OUTPUT=OTHER_SHA256)
    assert other.returncode == 1
    assert "::error::" in other.stdout
    unknown = shell(assertion["run"], **stack, DEV_SHA256="", FAKE_STACK_OUTPUT="")
    assert unknown.returncode == 1


def test_dev_exports_the_artifact_it_deployed(shell: Shell, tmp_path: Path) -> None:
    """dev's job output is its stack's artifactSha256, checked against the sha it built."""
    job = load_workflow(DEPLOY)["jobs"]["dev"]
    assert job["outputs"]["artifact_sha256"] == "${{ steps.deployed.outputs.artifact_sha256 }}"
    record = next(s for s in job["steps"] if s.get("id") == "deployed")
    assert record["env"]["BUILT_SHA256"] == "${{ steps.built.outputs.sha256 }}"
    stack = {"STACK": "dev", "PULUMI_STACK": "acme/skdeploy/dev"}
    ok = shell(record["run"], **stack, BUILT_SHA256=SHA256, FAKE_STACK_OUTPUT=SHA256)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert (tmp_path / "github_output").read_text() == f"artifact_sha256={SHA256}\n"
    for output, built in (("not-a-sha", "not-a-sha"), (SHA256, OTHER_SHA256)):
        bad = shell(record["run"], **stack, BUILT_SHA256=built, FAKE_STACK_OUTPUT=output)
        assert bad.returncode == 1
        assert "::error::" in bad.stdout


def test_dev_logs_the_sha256_of_the_real_build(shell: Shell, tmp_path: Path) -> None:
    """dev's build step runs `skdeploy build --json` and outputs the artifact's real sha256."""
    uv = shutil.which("uv") or str(REPO / "build" / "uv" / "bin" / "uv")
    if not Path(uv).exists():
        pytest.skip("uv is neither on PATH nor bootstrapped by make into build/uv")
    step = step_named(
        load_workflow(DEPLOY)["jobs"]["dev"], "Build the artifact (its sha256 goes to the log)"
    )
    expected = build_for_settings(load_stack_settings(REPO, "dev")).sha256
    home = os.environ.get("HOME", str(tmp_path))  # uv's own cache and Python installs
    result = shell(
        f"cd {REPO}\n{step['run']}",
        prepend=[str(Path(uv).parent)],
        STACK="dev",
        UV_FROZEN="1",
        HOME=home,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "github_output").read_text() == f"sha256={expected}\n"


# --- 4. IAM documents ---------------------------------------------------------------------------


def trusted_subjects(trust: dict[str, Any]) -> list[str]:
    """The ``sub`` values a trust policy accepts (StringEquals only)."""
    (statement,) = trust["Statement"]
    return as_list(statement["Condition"]["StringEquals"][f"{OIDC_ISSUER}:sub"])


@pytest.mark.parametrize("path", PERMISSION_POLICIES, ids=lambda p: p.name)
def test_permission_policy_is_a_valid_least_privilege_document(path: Path) -> None:
    """Version, Sids, Effects, `service:Action` names with no wildcard; `*` only where justified."""
    policy = load_policy(path)
    assert set(policy) == {"Version", "Statement"}
    assert policy["Version"] == "2012-10-17"
    assert isinstance(policy["Statement"], list)
    assert policy["Statement"]
    sids = [s.get("Sid") for s in policy["Statement"]]
    assert all(sids), "every statement needs a Sid"
    assert len(set(sids)) == len(sids), "Sids must be unique"
    readme = DEPLOY_README.read_text(encoding="utf-8")
    for statement in policy["Statement"]:
        sid = statement["Sid"]
        assert set(statement) <= {"Sid", "Effect", "Action", "Resource", "Condition"}, sid
        assert statement["Effect"] in ("Allow", "Deny"), sid
        actions = as_list(statement["Action"])
        assert actions, sid
        assert all(ACTION_NAME.fullmatch(a) for a in actions), f"{sid}: {actions}"
        assert len(set(actions)) == len(actions), f"{sid}: duplicate actions"
        resources = as_list(statement["Resource"])
        assert resources, sid
        if "*" in resources:
            assert sid in JUSTIFIED_WILDCARD_SIDS, f"{sid}: Resource * is not justified"
            assert resources == ["*"]
            assert f"`{sid}`" in readme, f"{sid}: no justification in deploy/README.md"
        for resource in resources:
            assert resource == "*" or resource.startswith("arn:aws:"), f"{sid}: {resource}"


@pytest.mark.parametrize("path", TRUST_POLICIES, ids=lambda p: p.name)
def test_trust_policy_accepts_only_github_oidc_for_this_repository(path: Path) -> None:
    """Federated GitHub OIDC, audience sts.amazonaws.com, exact subjects of OWNER/REPO only."""
    trust = load_policy(path)
    assert trust["Version"] == "2012-10-17"
    (statement,) = trust["Statement"]
    assert statement["Effect"] == "Allow"
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert statement["Principal"] == {
        "Federated": f"arn:aws:iam::ACCOUNT_ID:oidc-provider/{OIDC_ISSUER}"
    }
    assert set(statement["Condition"]) == {"StringEquals"}
    equals = statement["Condition"]["StringEquals"]
    assert equals[f"{OIDC_ISSUER}:aud"] == "sts.amazonaws.com"
    subjects = trusted_subjects(trust)
    assert subjects
    for subject in subjects:
        assert "*" not in subject, subject
        assert "?" not in subject, subject
        assert subject.startswith("repo:OWNER/REPO:"), subject
    if path == DEPLOY_TRUST:
        assert set(subjects) == {
            "repo:OWNER/REPO:ref:refs/heads/main",
            "repo:OWNER/REPO:environment:dev",
            "repo:OWNER/REPO:environment:staging",
            "repo:OWNER/REPO:environment:prod",
        }


#: What the provider calls for each resource type the stacks declare (create, read, update,
#: delete, tags), as IAM actions, with the ARN they are authorised against. The artifact object is
#: retained on delete (content-addressed, kept for AWS's patching), so no delete is needed for it.
Need = tuple[str, str, dict[str, str]]  # (action, resource ARN, condition context)

BUCKET_READ = (
    "s3:ListBucket",
    "s3:GetBucketLocation",
    "s3:GetBucketPolicy",
    "s3:GetBucketAcl",
    "s3:GetBucketCORS",
    "s3:GetBucketWebsite",
    "s3:GetBucketVersioning",
    "s3:GetAccelerateConfiguration",
    "s3:GetBucketRequestPayment",
    "s3:GetBucketLogging",
    "s3:GetLifecycleConfiguration",
    "s3:GetReplicationConfiguration",
    "s3:GetEncryptionConfiguration",
    "s3:GetBucketObjectLockConfiguration",
    "s3:GetBucketTagging",
)
BUCKET_PARTS = {
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": (
        "s3:PutBucketPublicAccessBlock",
        "s3:GetBucketPublicAccessBlock",
    ),
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls": (
        "s3:PutBucketOwnershipControls",
        "s3:GetBucketOwnershipControls",
    ),
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": (
        "s3:PutEncryptionConfiguration",
        "s3:GetEncryptionConfiguration",
    ),
    "aws:s3/bucketVersioning:BucketVersioning": (
        "s3:PutBucketVersioning",
        "s3:GetBucketVersioning",
    ),
    "aws:s3/bucketPolicy:BucketPolicy": (
        "s3:PutBucketPolicy",
        "s3:GetBucketPolicy",
        "s3:DeleteBucketPolicy",
    ),
}
ROLE_ACTIONS = (
    "iam:CreateRole",
    "iam:TagRole",
    "iam:UntagRole",
    "iam:GetRole",
    "iam:UpdateRole",
    "iam:UpdateAssumeRolePolicy",
    "iam:ListRolePolicies",
    "iam:GetRolePolicy",
    "iam:ListAttachedRolePolicies",
    "iam:ListInstanceProfilesForRole",
    "iam:DeleteRolePolicy",
    "iam:DeleteRole",
)
SAGEMAKER_TAGS = ("sagemaker:AddTags", "sagemaker:ListTags", "sagemaker:DeleteTags")
SAGEMAKER_OPERATIONS: dict[str, tuple[str, ...]] = {
    "aws:sagemaker/model:Model": ("CreateModel", "DescribeModel", "DeleteModel"),
    "aws:sagemaker/endpointConfiguration:EndpointConfiguration": (
        "CreateEndpointConfig",
        "DescribeEndpointConfig",
        "DeleteEndpointConfig",
    ),
    "aws:sagemaker/endpoint:Endpoint": (
        "CreateEndpoint",
        "DescribeEndpoint",
        "UpdateEndpoint",
        "DeleteEndpoint",
    ),
}
#: What ``skdeploy smoke`` calls on the endpoint.
SMOKE_ACTIONS = ("sagemaker:DescribeEndpoint", "sagemaker:InvokeEndpoint")


def sagemaker_arn(like: str, kind: str, name: str) -> str:
    """A SageMaker ARN in the region and account of ``like``; SageMaker lowercases names."""
    region_account = ":".join(like.split(":")[3:5])
    return f"arn:aws:sagemaker:{region_account}:{kind}/{name}".lower()


def needs_of(resource: DeclaredResource) -> list[Need]:
    """The (action, ARN, context) triples the provider needs to manage ``resource``."""
    kind = resource.type
    if kind == "aws:s3/bucket:Bucket":
        arn = resource.outputs["arn"]
        writes = ("s3:CreateBucket", "s3:PutBucketTagging", "s3:DeleteBucket")
        return [(a, arn, {}) for a in writes + BUCKET_READ]
    if kind in BUCKET_PARTS:
        return [(a, f"arn:aws:s3:::{resource.inputs['bucket']}", {}) for a in BUCKET_PARTS[kind]]
    if kind == "aws:s3/bucketObjectv2:BucketObjectv2":
        arn = f"arn:aws:s3:::{resource.inputs['bucket']}/{resource.inputs['key']}"
        object_actions = (
            "s3:PutObject",
            "s3:PutObjectTagging",
            "s3:GetObject",
            "s3:GetObjectTagging",
        )
        return [(a, arn, {}) for a in object_actions]
    if kind == "aws:iam/role:Role":
        return [(a, resource.outputs["arn"], {}) for a in ROLE_ACTIONS]
    if kind == "aws:iam/rolePolicy:RolePolicy":
        role = (
            f"arn:aws:iam::{resource.outputs['arn'].split(':')[4]}:role/{resource.inputs['role']}"
        )
        policy_actions = ("iam:PutRolePolicy", "iam:GetRolePolicy", "iam:DeleteRolePolicy")
        return [(a, role, {}) for a in policy_actions]
    if kind in SAGEMAKER_OPERATIONS:
        arn = resource.outputs["arn"].lower()
        needed: list[Need] = [(f"sagemaker:{a}", arn, {}) for a in SAGEMAKER_OPERATIONS[kind]]
        needed += [(a, arn, {}) for a in SAGEMAKER_TAGS]
        if kind == "aws:sagemaker/model:Model":
            passed = {"iam:PassedToService": "sagemaker.amazonaws.com"}
            needed.append(("iam:PassRole", resource.inputs["executionRoleArn"], passed))
        if kind == "aws:sagemaker/endpoint:Endpoint":
            config = sagemaker_arn(arn, "endpoint-config", resource.inputs["endpointConfigName"])
            needed += [
                (a, config, {}) for a in ("sagemaker:CreateEndpoint", "sagemaker:UpdateEndpoint")
            ]
            needed += [(a, arn, {}) for a in SMOKE_ACTIONS]
        return needed
    pytest.fail(
        f"the stacks declare {kind}, which this test does not know: add the IAM actions its "
        "create/read/update/delete call to deploy/deploy-role-policy*.json and to needs_of()"
    )


@pytest.fixture(scope="module")
def declared_needs() -> dict[str, list[Need]]:
    """Per stack, everything the deploy role must be allowed to do for its resources."""
    found: dict[str, list[Need]] = {}
    for stack in STACKS:
        run = run_program(REPO, stack)
        found[stack] = [n for r in run.resources if r.custom for n in needs_of(r)]
    return found


def test_deploy_role_covers_every_resource_the_stacks_declare(
    declared_needs: dict[str, list[Need]],
) -> None:
    """Every call the provider and the smoke test make for each stack is allowed, on its ARN."""
    policies = [load_policy(p) for p in PERMISSION_POLICIES if p.name.startswith("deploy-role")]
    for stack, needed in declared_needs.items():
        refused = [n[:2] for n in needed if not allows(policies, *n)]
        assert refused == [], f"{stack}: the deploy role refuses {refused}"


def test_deploy_role_grants_nothing_the_stacks_do_not_use(
    declared_needs: dict[str, list[Need]],
) -> None:
    """Every action of deploy-role-policy.json is one the stacks' resources or smoke test need."""
    used = {action for needed in declared_needs.values() for action, _, _ in needed}
    granted = {a for s in load_policy(DEPLOY_POLICY)["Statement"] for a in as_list(s["Action"])}
    assert granted - used == set()


def test_preview_role_is_read_only_and_within_the_deploy_role() -> None:
    """The PR-reachable role may only Get/Describe/List, on resources the deploy role manages."""
    deploy = [load_policy(DEPLOY_POLICY)]
    for statement in load_policy(PREVIEW_POLICY)["Statement"]:
        assert statement["Effect"] == "Allow"
        assert "Condition" not in statement
        for action in as_list(statement["Action"]):
            verb = action.split(":")[1]
            assert verb.startswith(("Get", "Describe", "List")), action
            for resource in as_list(statement["Resource"]):
                assert allows(deploy, action, resource), f"{action} on {resource}"
