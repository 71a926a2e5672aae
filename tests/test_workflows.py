"""CI/CD: the workflows are valid, pinned and least-privileged, promote one artifact through the
stages, and the OIDC roles' IAM documents grant what the stacks declare and nothing more.

The Pulumi CLI cannot run here, so the steps that call it are run with a stand-in ``pulumi`` on
PATH that answers ``pulumi stack output <key> --stack <name>`` and refuses anything else: what is
under test is the workflow's own shell logic, not the CLI.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import pickletools
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

from skdeploy.core.artifact import build_for_settings
from skdeploy.core.constants import OUTPUT_ARTIFACT_SHA256
from skdeploy.core.frameworks import FRAMEWORKS
from skdeploy.core.settings import load_stack_settings, read_stack_config
from skdeploy.infra.scaling import SCALABLE_DIMENSION, SERVICE_NAMESPACE, ScalingTargetGuardProvider
from skdeploy.tooling.mockrun import MOCK_ACCOUNT_ID, DeclaredResource, ProgramRun, run_program
from tests.support import REPO, STACKS

WORKFLOWS = REPO / ".github" / "workflows"
PREVIEW = WORKFLOWS / "preview.yml"
DEPLOY = WORKFLOWS / "deploy.yml"
DEPLOY_DIR = REPO / "deploy"
DEPLOY_README = DEPLOY_DIR / "README.md"
DEPLOY_POLICY = DEPLOY_DIR / "deploy-role-policy.json"
EXTENSIONS = DEPLOY_DIR / "deploy-role-policy-extensions.json"
API_EXTENSION = DEPLOY_DIR / "deploy-role-policy-api.json"
PREVIEW_API_EXTENSION = DEPLOY_DIR / "preview-role-policy-api.json"
PREVIEW_POLICY = DEPLOY_DIR / "preview-role-policy.json"
DEPLOY_TRUST = DEPLOY_DIR / "deploy-role-trust-policy.json"
PREVIEW_TRUST = DEPLOY_DIR / "preview-role-trust-policy.json"
TRUST_POLICIES = (DEPLOY_TRUST, PREVIEW_TRUST)
PERMISSION_POLICIES = tuple(sorted(p for p in DEPLOY_DIR.glob("*.json") if p not in TRUST_POLICIES))

#: Statements that may name ``Resource: "*"``: AWS offers no resource-level permission for their
#: actions (Service Authorization Reference), or AWS makes the call naming no resource (Application
#: Auto Scaling's permission checks). deploy/README.md explains each under "Justification".
JUSTIFIED_WILDCARD_SIDS = frozenset(
    {
        "DescribeScalingHasNoResourceLevelPermissions",
        "DescribeLogGroupsHasNoResourceLevelPermissions",
        "AlarmCallsThatNameNoAlarm",
        # permissions-boundary-policy.json: what the execution role itself names "*" for
        # (skdeploy/core/iam.py, WILDCARD_RESOURCE_SIDS), which the boundary must leave it.
        "PullImageAuthorization",
        "PutSageMakerMetrics",
        "ManageVpcNetworkInterfaces",
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


def load_deploy_policy() -> dict[str, Any]:
    """deploy-role-policy.json with ``ACCOUNT_ID`` filled in (the mocks' account), as Setup does."""
    text = DEPLOY_POLICY.read_text(encoding="utf-8")
    filled: dict[str, Any] = json.loads(text.replace("ACCOUNT_ID", MOCK_ACCOUNT_ID))
    return filled


#: Condition operators allows() evaluates. A negated operator is true when the key is absent from
#: the request (IAM User Guide, "IAM JSON policy elements: Condition operators").
CONDITION_OPERATORS = ("StringEquals", "StringNotEquals", "StringLike", "StringNotLike", "Bool")


def condition_holds(operator: str, key: str, wanted: list[str], context: dict[str, str]) -> bool:
    """Whether one ``operator: {key: wanted}`` condition holds for the request ``context``."""
    if operator not in CONDITION_OPERATORS:
        pytest.fail(f"allows() cannot evaluate the condition operator {operator}: teach it first")
    value = context.get(key)
    if operator == "Bool":
        return value is not None and value.lower() in [str(w).lower() for w in wanted]
    if operator in ("StringEquals", "StringNotEquals"):
        matched = value is not None and value in wanted
    else:
        matched = value is not None and any(iam_pattern(w).fullmatch(value) for w in wanted)
    return matched if operator in ("StringEquals", "StringLike") else not matched


def allows(
    policies: Iterable[dict[str, Any]],
    action: str,
    resource: str,
    context: dict[str, str] | None = None,
) -> bool:
    """Whether an Allow statement grants ``action`` on ``resource`` and no Deny refuses it.

    Conditions are evaluated against ``context`` (a key absent from ``context`` is absent from the
    request) for the operators of :data:`CONDITION_OPERATORS`; any other operator fails the test,
    since neither "never matches" (which would silence a Deny) nor "always matches" is safe.
    ``resource`` ``"*"`` stands for a call that names no resource: only a statement on ``"*"``
    matches it.
    """
    context = context or {}

    def matches(statement: dict[str, Any]) -> bool:
        actions = as_list(statement.get("Action", []))
        resources = as_list(statement.get("Resource", []))
        if not any(iam_pattern(a.lower()).fullmatch(action.lower()) for a in actions):
            return False
        if not any(iam_pattern(r).fullmatch(resource) for r in resources):
            return False
        return all(
            condition_holds(operator, key, as_list(expected), context)
            for operator, keys in statement.get("Condition", {}).items()
            for key, expected in keys.items()
        )

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
    # `uv run` names itself in UV; make bootstraps build/uv where uv is not on PATH.
    uv = os.environ.get("UV") or shutil.which("uv") or str(REPO / "build" / "uv" / "bin" / "uv")
    if not Path(uv).exists():
        if os.environ.get("CI"):  # CI runs the suite through uv: not finding it is a failure
            pytest.fail(f"uv not found (UV, PATH, {REPO / 'build' / 'uv'})")
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


RUNTIME_PYTHONS_STEP = "Install the Pythons of the container runtimes"


def runs_the_runtime(script: str) -> bool:
    """Whether a script needs the container-faithful runtime (the whole suite, or a full check)."""
    return "make test" in script or ("skdeploy check" in script and "--static" not in script)


def test_jobs_install_the_runtime_pythons_before_they_need_them() -> None:
    """Each job that runs `make test` or `skdeploy check` installs the runtimes' Pythons first."""
    checked = 0
    for workflow in all_workflows():
        for name, job in load_workflow(workflow)["jobs"].items():
            names = [s.get("name") for s in job.get("steps", [])]
            needing = [
                i for i, s in enumerate(job.get("steps", [])) if runs_the_runtime(s.get("run", ""))
            ]
            if not needing:
                continue
            checked += 1
            assert RUNTIME_PYTHONS_STEP in names, f"{workflow.name}:{name}"
            assert names.index(RUNTIME_PYTHONS_STEP) < needing[0], f"{workflow.name}:{name}"
    assert checked >= 5  # both test jobs and the three stages


def test_the_runtime_pythons_step_installs_each_local_runtime_python(
    shell: Shell, tmp_path: Path
) -> None:
    """The step asks uv for exactly the Pythons of the frameworks that have a local runtime."""
    step = step_named(load_workflow(DEPLOY)["jobs"]["dev"], RUNTIME_PYTHONS_STEP)
    stand_in = tmp_path / "uv-bin"
    stand_in.mkdir()
    uv = stand_in / "uv"
    uv.write_text(
        "#!/bin/sh\n"
        'if [ "$1 $2 $3" = "run --frozen python" ]; then shift 3; exec "$REAL_PYTHON" "$@"; fi\n'
        'if [ "$1 $2" = "python install" ]; then shift 2; echo "$@" > "$RUNNER_TEMP/installed"; '
        "exit 0; fi\n"
        "exit 3\n",
        encoding="utf-8",
    )
    uv.chmod(uv.stat().st_mode | stat.S_IXUSR)
    result = shell(f"cd {REPO}\n{step['run']}", prepend=[str(stand_in)], REAL_PYTHON=sys.executable)
    assert result.returncode == 0, result.stdout + result.stderr
    installed = (tmp_path / "installed").read_text(encoding="utf-8").split()
    expected = {f.python for f in FRAMEWORKS.values() if f.local_runtime}
    assert sorted(installed) == sorted(expected)
    assert expected


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


#: What AWS must allow for each resource type the stacks declare: the provider's create, read,
#: update, delete and tag calls (pulumi-aws is bridged from the Terraform AWS provider, whose
#: resource code they follow), the calls of the program's own dynamic provider, the calls a
#: service makes with the caller's credentials (cited where they are made), and the smoke test's.
#: Each is an IAM action with the ARN it is authorised against; ``"*"`` is a call that names no
#: resource. Resources retained on delete (the content-addressed artifact always; prod's protected
#: ones) need no delete.
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
#: The role calls the deploy role may make only on a role that carries the permissions boundary
#: (the iam:PermissionsBoundary condition key of the request: the boundary being set, or the one the
#: role has). internal/service/iam/role.go: resourceRoleCreate passes PermissionsBoundary to
#: CreateRole; resourceRoleUpdate calls PutRolePermissionsBoundary when permissions_boundary
#: changes (the first deploy of a role created before it had one) and
#: DeleteRolePermissionsBoundary when it is removed, which the program never does.
BOUNDED_ROLE_ACTIONS = ("iam:CreateRole", "iam:PutRolePermissionsBoundary")
ROLE_ACTIONS = (
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


LOG_GROUP_ACTIONS = (
    "logs:CreateLogGroup",
    "logs:ListTagsForResource",
    "logs:TagResource",
    "logs:UntagResource",
)
ALARM_ACTIONS = (
    "cloudwatch:PutMetricAlarm",
    "cloudwatch:DescribeAlarms",
    "cloudwatch:ListTagsForResource",
    "cloudwatch:TagResource",
    "cloudwatch:UntagResource",
)
#: Before it registers a target or puts a policy, Application Auto Scaling checks with the caller's
#: credentials that the caller could manage the policy's alarms: PutMetricAlarm and DeleteAlarms
#: with no alarm name, DescribeAlarms with no filter (Application Auto Scaling User Guide,
#: "Permissions validation for API calls on target resources"). Those calls name no alarm.
SCALING_ALARM_CHECKS = (
    "cloudwatch:PutMetricAlarm",
    "cloudwatch:DescribeAlarms",
    "cloudwatch:DeleteAlarms",
)
#: ... and that the caller could scale the variant itself (same guide, "Permissions required for
#: API actions on target services and CloudWatch", SageMaker endpoints).
SCALING_ENDPOINT_CHECKS = (
    "sagemaker:DescribeEndpoint",
    "sagemaker:UpdateEndpointWeightsAndCapacities",
)
SCALING_SERVICE = "sagemaker.application-autoscaling.amazonaws.com"
SCALING_SERVICE_LINKED_ROLE = (
    f"aws-service-role/{SCALING_SERVICE}/AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint"
)
ENDPOINT = "aws:sagemaker/endpoint:Endpoint"
ENDPOINT_CONFIG = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"
BUCKET_ENCRYPTION = (
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
)
SCALING_GUARD = f"{ScalingTargetGuardProvider.__module__}.{ScalingTargetGuardProvider.__qualname__}"

# The HTTPS front door (skdeploy/infra/api.py, `skdeploy:api`). Read in a stored copy of
# terraform-provider-aws (internal/service/lambda, internal/service/apigatewayv2), not pinned to
# the commit that pulumi-aws 7.51.1 bridges.

#: internal/service/lambda/function.go: resourceFunctionCreate calls CreateFunction, then
#: GetFunction until the function is Active; resourceFunctionRead calls GetFunction,
#: ListVersionsByFunction (findLatestFunctionVersionByName, for `version` and `qualified_arn`)
#: and, for a zip package in the aws partition where AWS Signer is available
#: (signerServiceIsAvailable: us-east-1 and eu-west-1 among them), GetFunctionCodeSigningConfig;
#: resourceFunctionUpdate calls UpdateFunctionConfiguration and UpdateFunctionCode and waits with
#: GetFunction; resourceFunctionDelete calls DeleteFunction. PutFunctionConcurrency and
#: PublishVersion are only called for reserved_concurrent_executions >= 0 and publish = true,
#: which the program never sets.
FUNCTION_ACTIONS = (
    "lambda:CreateFunction",
    "lambda:GetFunction",
    "lambda:ListVersionsByFunction",
    "lambda:GetFunctionCodeSigningConfig",
    "lambda:UpdateFunctionConfiguration",
    "lambda:UpdateFunctionCode",
)
#: Tagging on create (CreateFunction with Tags) needs lambda:TagResource, and GetFunction of a
#: tagged function needs lambda:ListTags (Lambda Developer Guide, "Using tags on Lambda functions",
#: permissions required for working with tags); later tag changes are TagResource/UntagResource.
FUNCTION_TAG_ACTIONS = ("lambda:TagResource", "lambda:UntagResource", "lambda:ListTags")
#: internal/service/lambda/permission.go: AddPermission, then GetPolicy to find the statement
#: (also on read, and after RemovePermission until it is gone). AddPermission and RemovePermission
#: take the lambda:Principal condition key (Service Authorization Reference, AWS Lambda; the Lambda
#: Developer Guide's example restricts both with it).
PERMISSION_SCOPED_ACTIONS = ("lambda:AddPermission", "lambda:RemovePermission")
FRONT_DOOR_FUNCTION = "aws:lambda/function:Function"
FRONT_DOOR_API = "aws:apigatewayv2/api:Api"
FRONT_DOOR_TYPES = frozenset(
    {
        FRONT_DOOR_FUNCTION,
        "aws:lambda/permission:Permission",
        FRONT_DOOR_API,
        "aws:apigatewayv2/integration:Integration",
        "aws:apigatewayv2/route:Route",
        "aws:apigatewayv2/stage:Stage",
    }
)
#: API Gateway authorises its management API by HTTP verb on the path (Service Authorization
#: Reference, "Amazon API Gateway Management V2": apigateway:POST creates in a collection,
#: GET/PATCH/DELETE read, update and delete one resource; resource types
#: arn:aws:apigateway:<region>::/apis, /apis/<ApiId>, /apis/<ApiId>/integrations[/<IntegrationId>],
#: /routes[/<RouteId>], /stages[/<StageName>]). internal/service/apigatewayv2/api.go,
#: integration.go, route.go and stage.go call Create* (POST on the collection), Get* (GET),
#: Update* (PATCH) and Delete* (DELETE); stage.go also reads the API (GetApi) on create, read and
#: update. Routes and integrations cannot be tagged (API Gateway Developer Guide, "API Gateway
#: resources that can be tagged": Api, DomainName, Stage, VpcLink; tag inheritance only in the V1
#: REST API), so no tag condition can scope them.
APIGATEWAY_ONE = ("apigateway:GET", "apigateway:PATCH", "apigateway:DELETE")
#: The Api itself can be tagged, and the reference lists aws:ResourceTag/${TagKey} for its resource
#: type (/apis/${ApiId}) and for DELETE and PATCH on it: the api extension lets the role update and
#: delete only an API that carries the project tag every skdeploy resource gets
#: (skdeploy/infra/endpoint.py, resource_tags). The context is the API's own tag; reads are not
#: scoped.
APIGATEWAY_API_CHANGES = ("apigateway:PATCH", "apigateway:DELETE")
PROJECT_TAG = "skdeploy:project"
#: The Api and the Stage are created with their tags. Creating a stage with tags is also
#: authorised as apigateway:TagResource on the stages collection, an action the Service
#: Authorization Reference does not list (the AccessDenied in aws-amplify/amplify-studio#889;
#: hashicorp/terraform-provider-aws#20634 reports a stage create failing only with tags);
#: the same check for CreateApi on /apis is assumed by analogy, not seen. Changing tags later (the
#: skdeploy:artifact-sha256 tag changes with every new model) is the V2 TagResource /
#: UntagResource, POST / DELETE on arn:aws:apigateway:<region>::/tags/<resource ARN> (resource
#: type Tags in the reference); the tagged resource's ARN appears there unencoded, as an
#: AccessDenied for TagResource reported it (not verified against AWS here).
APIGATEWAY_TAG_CHANGES = ("apigateway:POST", "apigateway:DELETE")


def region_and_account(resource: DeclaredResource) -> tuple[str, str]:
    """The region and account of ``resource``, from the ARN the mocks give it."""
    parts = str(resource.outputs["arn"]).split(":")
    return parts[3], parts[4]


def scalable_target_arn(region: str, account: str, resource_id: str) -> str:
    """A scalable target's ARN; AWS names it with a random id, which a hash stands in for."""
    random_id = hashlib.sha256(resource_id.encode()).hexdigest()[:36]
    return f"arn:aws:application-autoscaling:{region}:{account}:scalable-target/{random_id}"


def scaling_scope(namespace: str, dimension: str) -> dict[str, str]:
    """The condition keys Application Auto Scaling sets on its target and policy calls."""
    return {
        "application-autoscaling:service-namespace": namespace,
        "application-autoscaling:scalable-dimension": dimension,
    }


def dynamic_provider_name(resource: DeclaredResource) -> str:
    """The class of a dynamic resource's provider, read from its pickle without unpickling it."""
    raw = resource.outputs["__provider"]
    value = raw.get("value") if isinstance(raw, dict) else raw  # a secret, as Pulumi stores it
    opcodes = pickletools.genops(base64.b64decode(str(value)))
    module, name = [arg for _, arg, _ in opcodes if isinstance(arg, str)][:2]
    return f"{module}.{name}"


def stand_in_id(resource: DeclaredResource) -> str:
    """An id AWS makes up at random (an integration's, a route's); a hash stands in for it."""
    return hashlib.sha256(resource.urn.encode()).hexdigest()[:7]


def apigateway_arn(resource: DeclaredResource, path: str) -> str:
    """An API Gateway management ARN (no account) in the region of ``resource``."""
    region, _ = region_and_account(resource)
    return f"arn:aws:apigateway:{region}::{path}"


def apigateway_tag_needs(resource: DeclaredResource, arn: str, collection: str) -> list[Need]:
    """What creating ``resource`` with its tags, and changing them later, asks of API Gateway."""
    if not resource.inputs.get("tags"):
        return []
    tags = apigateway_arn(resource, f"/tags/{arn}")
    needed: list[Need] = [("apigateway:TagResource", apigateway_arn(resource, collection), {})]
    return needed + [(a, tags, {}) for a in APIGATEWAY_TAG_CHANGES]


def front_door_needs(resource: DeclaredResource) -> list[Need]:
    """The (action, ARN, context) triples for the types of skdeploy/infra/api.py (Lambda, API GW
    v2)."""
    kind = resource.type
    inputs = resource.inputs
    region, account = region_and_account(resource)
    if kind == FRONT_DOOR_FUNCTION:
        arn = resource.outputs["arn"]
        actions = list(FUNCTION_ACTIONS)
        if inputs.get("tags"):
            actions += FUNCTION_TAG_ACTIONS
        if not resource.retain_on_delete:
            actions.append("lambda:DeleteFunction")
        passed = {"iam:PassedToService": "lambda.amazonaws.com"}
        return [(a, arn, {}) for a in actions] + [("iam:PassRole", inputs["role"], passed)]
    if kind == "aws:lambda/permission:Permission":
        function = f"arn:aws:lambda:{region}:{account}:function:{inputs['function']}"
        principal = {"lambda:Principal": inputs["principal"]}
        needed: list[Need] = [(a, function, principal) for a in PERMISSION_SCOPED_ACTIONS]
        return [*needed, ("lambda:GetPolicy", function, {})]
    if kind == FRONT_DOOR_API:
        api = resource.outputs["arn"]
        tagged = {f"aws:ResourceTag/{PROJECT_TAG}": inputs["tags"][PROJECT_TAG]}
        needed = [("apigateway:POST", apigateway_arn(resource, "/apis"), {})]
        needed += [(a, api, tagged if a in APIGATEWAY_API_CHANGES else {}) for a in APIGATEWAY_ONE]
        return needed + apigateway_tag_needs(resource, api, "/apis")
    parts = {
        "aws:apigatewayv2/integration:Integration": "integrations",
        "aws:apigatewayv2/route:Route": "routes",
        "aws:apigatewayv2/stage:Stage": "stages",
    }
    collection = f"/apis/{inputs['apiId']}/{parts[kind]}"
    name = inputs["name"] if parts[kind] == "stages" else stand_in_id(resource)
    one = apigateway_arn(resource, f"{collection}/{name}")
    needed = [("apigateway:POST", apigateway_arn(resource, collection), {})]
    needed += [(a, one, {}) for a in APIGATEWAY_ONE]
    if parts[kind] == "stages":
        needed.append(("apigateway:GET", apigateway_arn(resource, f"/apis/{inputs['apiId']}"), {}))
        needed += apigateway_tag_needs(resource, one, collection)
    return needed


def named(run: ProgramRun, kind: str, name: str) -> DeclaredResource:
    """The one resource of ``kind`` whose physical name is ``name``."""
    (found,) = [r for r in run.by_type(kind) if r.outputs["name"] == name]
    return found


def bucket_kms_key(run: ProgramRun, bucket: str) -> str | None:
    """The KMS key that encrypts new objects of ``bucket`` by default, if any."""
    for part in run.by_type(BUCKET_ENCRYPTION):
        if part.inputs["bucket"] == bucket:
            for rule in part.inputs["rules"]:
                key = rule["applyServerSideEncryptionByDefault"].get("kmsMasterKeyId")
                if key:
                    return str(key)
    return None


def needs_of(resource: DeclaredResource, run: ProgramRun) -> list[Need]:
    """The (action, ARN, context) triples AWS must allow to manage ``resource`` of ``run``."""
    kind = resource.type
    inputs = resource.inputs
    if kind == "pulumi:pulumi:StackReference":
        # Reads this stack's own previous outputs from the Pulumi backend (Pulumi Cloud, or the
        # self-managed backend's state): no AWS call, so nothing from the deploy role.
        return []
    if kind == "aws:s3/bucket:Bucket":
        arn = resource.outputs["arn"]
        writes = ("s3:CreateBucket", "s3:PutBucketTagging", "s3:DeleteBucket")
        return [(a, arn, {}) for a in writes + BUCKET_READ]
    if kind in BUCKET_PARTS:
        return [(a, f"arn:aws:s3:::{inputs['bucket']}", {}) for a in BUCKET_PARTS[kind]]
    if kind == "aws:s3/bucketObjectv2:BucketObjectv2":
        arn = f"arn:aws:s3:::{inputs['bucket']}/{inputs['key']}"
        object_actions = (
            "s3:PutObject",
            "s3:PutObjectTagging",
            "s3:GetObject",
            "s3:GetObjectTagging",
        )
        needed: list[Need] = [(a, arn, {}) for a in object_actions]
        key = bucket_kms_key(run, inputs["bucket"])
        if key:
            # Under SSE-KMS default encryption S3 asks KMS for a data key as the uploader.
            needed.append(("kms:GenerateDataKey", key, {}))
        return needed
    if kind == "aws:iam/role:Role":
        bounded = {"iam:PermissionsBoundary": inputs["permissionsBoundary"]}
        needed = [(a, resource.outputs["arn"], bounded) for a in BOUNDED_ROLE_ACTIONS]
        return needed + [(a, resource.outputs["arn"], {}) for a in ROLE_ACTIONS]
    if kind == "aws:iam/rolePolicy:RolePolicy":
        role = f"arn:aws:iam::{resource.outputs['arn'].split(':')[4]}:role/{inputs['role']}"
        (owner,) = [
            r for r in run.by_type("aws:iam/role:Role") if r.outputs["name"] == inputs["role"]
        ]
        bounded = {"iam:PermissionsBoundary": owner.inputs["permissionsBoundary"]}
        needed = [("iam:PutRolePolicy", role, bounded)]
        return needed + [(a, role, {}) for a in ("iam:GetRolePolicy", "iam:DeleteRolePolicy")]
    if kind in SAGEMAKER_OPERATIONS:
        arn = resource.outputs["arn"].lower()
        needed = [(f"sagemaker:{a}", arn, {}) for a in SAGEMAKER_OPERATIONS[kind]]
        needed += [(a, arn, {}) for a in SAGEMAKER_TAGS]
        if kind == "aws:sagemaker/model:Model":
            passed = {"iam:PassedToService": "sagemaker.amazonaws.com"}
            needed.append(("iam:PassRole", inputs["executionRoleArn"], passed))
        if kind == ENDPOINT:
            config = sagemaker_arn(arn, "endpoint-config", inputs["endpointConfigName"])
            needed += [
                (a, config, {}) for a in ("sagemaker:CreateEndpoint", "sagemaker:UpdateEndpoint")
            ]
            needed += [(a, arn, {}) for a in SMOKE_ACTIONS]
            key = named(run, ENDPOINT_CONFIG, inputs["endpointConfigName"]).inputs.get("kmsKeyArn")
            if key:
                # CreateEndpoint (and UpdateEndpoint) with a configuration that names a key need
                # kms:CreateGrant (SageMaker API permissions reference); the grant is for the
                # endpoint's storage, an AWS resource.
                needed.append(("kms:CreateGrant", key, {"kms:GrantIsForAWSResource": "true"}))
                needed.append(("kms:DescribeKey", key, {}))
        return needed
    if kind == "aws:cloudwatch/logGroup:LogGroup":
        region, account = region_and_account(resource)
        arn = f"arn:aws:logs:{region}:{account}:log-group:{inputs['name']}"
        actions = list(LOG_GROUP_ACTIONS)
        retention = inputs.get("retentionInDays")
        actions.append("logs:PutRetentionPolicy" if retention else "logs:DeleteRetentionPolicy")
        if inputs.get("kmsKeyId"):
            # Adding the key to an existing log group, or taking it away, is a separate call.
            actions += ["logs:AssociateKmsKey", "logs:DisassociateKmsKey"]
        if not resource.retain_on_delete:
            actions.append("logs:DeleteLogGroup")
        # The provider finds the group by listing with its name as prefix.
        needed = [(a, arn, {}) for a in actions]
        return [*needed, ("logs:DescribeLogGroups", "*", {})]
    if kind == "aws:cloudwatch/metricAlarm:MetricAlarm":
        region, account = region_and_account(resource)
        arn = f"arn:aws:cloudwatch:{region}:{account}:alarm:{inputs['name']}"
        actions = list(ALARM_ACTIONS)
        if not resource.retain_on_delete:
            actions.append("cloudwatch:DeleteAlarms")
        return [(a, arn, {}) for a in actions]
    if kind == "aws:appautoscaling/target:Target":
        region, account = region_and_account(resource)
        target = scalable_target_arn(region, account, inputs["resourceId"])
        scope = scaling_scope(inputs["serviceNamespace"], inputs["scalableDimension"])
        needed = [
            ("application-autoscaling:RegisterScalableTarget", target, scope),
            ("application-autoscaling:DeregisterScalableTarget", target, scope),
            ("application-autoscaling:ListTagsForResource", target, {}),
            ("application-autoscaling:DescribeScalableTargets", "*", {}),
        ]
        if inputs.get("tags"):
            needed += [
                (a, target, {})
                for a in (
                    "application-autoscaling:TagResource",
                    "application-autoscaling:UntagResource",
                )
            ]
        # The first registration creates Application Auto Scaling's service-linked role.
        needed.append(
            (
                "iam:CreateServiceLinkedRole",
                f"arn:aws:iam::{account}:role/{SCALING_SERVICE_LINKED_ROLE}",
                {"iam:AWSServiceName": SCALING_SERVICE},
            )
        )
        endpoint_name = inputs["resourceId"].split("/")[1]  # endpoint/<name>/variant/<variant>
        endpoint = named(run, ENDPOINT, endpoint_name)
        endpoint_arn = endpoint.outputs["arn"].lower()
        config = endpoint.inputs["endpointConfigName"]
        needed += [(a, endpoint_arn, {}) for a in SCALING_ENDPOINT_CHECKS]
        needed.append(
            (
                "sagemaker:DescribeEndpointConfig",
                sagemaker_arn(endpoint_arn, "endpoint-config", config),
                {},
            )
        )
        return needed + [(a, "*", {}) for a in SCALING_ALARM_CHECKS]
    if kind == "aws:appautoscaling/policy:Policy":
        region, account = region_and_account(resource)
        target = scalable_target_arn(region, account, inputs["resourceId"])
        scope = scaling_scope(inputs["serviceNamespace"], inputs["scalableDimension"])
        needed = [
            ("application-autoscaling:PutScalingPolicy", target, scope),
            ("application-autoscaling:DeleteScalingPolicy", target, scope),
            ("application-autoscaling:DescribeScalingPolicies", "*", {}),
        ]
        return needed + [(a, "*", {}) for a in SCALING_ALARM_CHECKS]
    if (
        kind == "pulumi-python:dynamic:Resource"
        and dynamic_provider_name(resource) == SCALING_GUARD
    ):
        # The ScalingTargetGuard runs in the program's process with the deploying credentials:
        # its update deregisters the variant's scalable target; create, diff and delete call
        # nothing (skdeploy/infra/scaling.py).
        _, account = region_and_account(resource)
        target = scalable_target_arn(inputs["region"], account, inputs["resource_id"])
        scope = scaling_scope(SERVICE_NAMESPACE, SCALABLE_DIMENSION)
        return [("application-autoscaling:DeregisterScalableTarget", target, scope)]
    if kind in FRONT_DOOR_TYPES:
        return front_door_needs(resource)
    pytest.fail(
        f"the stacks declare {kind}, which this test does not know: add the IAM actions its "
        "create/read/update/delete call to deploy/deploy-role-policy*.json and to needs_of()"
    )


def needs_for(run: ProgramRun) -> list[Need]:
    """Everything the deploy role must be allowed to do for the resources of ``run``."""
    return [n for r in run.resources if r.custom for n in needs_of(r, run)]


@pytest.fixture(scope="module")
def declared_needs() -> dict[str, list[Need]]:
    """Per committed stack, everything the deploy role must be allowed to do."""
    return {stack: needs_for(run_program(REPO, stack)) for stack in STACKS}


#: Settings no committed stack uses, on prod (which has every other feature): a KMS key and a VPC,
#: which deploy-role-policy-extensions.json is for, and several variants with a shadow, which the
#: base policy must cover (one scaling target, policy and guard per variant). `api` (the HTTPS
#: front door: Lambda function, its role and log group, API Gateway HTTP API) is what
#: deploy-role-policy-api.json is for; it is run on its own (API_SETTINGS) and together with all
#: of these (its log group is then encrypted with the key, a call only that run makes).
OPTIONAL_KMS_KEY = (
    f"arn:aws:kms:eu-west-1:{MOCK_ACCOUNT_ID}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
)
OPTIONAL_SETTINGS: dict[str, object] = {
    "skdeploy:kmsKeyArn": OPTIONAL_KMS_KEY,
    "skdeploy:vpc": {
        "subnetIds": ["subnet-0123456789abcdef0"],
        "securityGroupIds": ["sg-0123456789abcdef0"],
    },
    "skdeploy:variants": [
        {"name": "blue", "modelDir": "model", "instanceType": "ml.c5.xlarge", "instanceCount": 2},
        {"name": "green", "modelDir": "model", "instanceType": "ml.m5.large", "instanceCount": 2},
    ],
    "skdeploy:shadow": {
        "name": "challenger",
        "modelDir": "model",
        "instanceType": "ml.m5.large",
        "instanceCount": 1,
    },
}


@pytest.fixture(scope="module")
def optional_needs() -> list[Need]:
    """Everything the deploy role must be allowed to do for prod with the optional settings."""
    config = {**read_stack_config(REPO, "prod"), **OPTIONAL_SETTINGS}
    run = run_program(REPO, "prod", config)
    assert len(run.by_type("aws:appautoscaling/target:Target")) == 2
    return needs_for(run)


#: `skdeploy:api` as skdeploy/core/settings.py reads it (auth defaults to iam).
API_SETTINGS: dict[str, object] = {"skdeploy:api": {"throttle": {"rate": 50, "burst": 100}}}


def front_door_run(extra: dict[str, object]) -> list[Need]:
    """Everything the deploy role must be allowed to do for prod with the front door, ``extra``."""
    config = {**read_stack_config(REPO, "prod"), **extra, **API_SETTINGS}
    run = run_program(REPO, "prod", config)
    assert {r.type for r in run.resources} >= FRONT_DOOR_TYPES
    return needs_for(run)


@pytest.fixture(scope="module")
def api_needs() -> list[Need]:
    """Everything the deploy role must be allowed to do for prod with `skdeploy:api` alone."""
    return front_door_run({})


@pytest.fixture(scope="module")
def api_and_optional_needs() -> list[Need]:
    """The same for prod with `skdeploy:api` and every other optional setting."""
    return front_door_run(OPTIONAL_SETTINGS)


def load_extensions() -> dict[str, Any]:
    """The extension policy with its placeholders filled in, as its user would for the key."""
    account = OPTIONAL_KMS_KEY.split(":")[4]
    key_id = OPTIONAL_KMS_KEY.split("/")[-1]
    text = EXTENSIONS.read_text(encoding="utf-8")
    filled: dict[str, Any] = json.loads(
        text.replace("ACCOUNT_ID", account).replace("KMS_KEY_ID", key_id)
    )
    return filled


def test_deploy_role_covers_every_resource_the_stacks_declare(
    declared_needs: dict[str, list[Need]],
) -> None:
    """Every call the provider and the smoke test make for each stack is allowed, on its ARN."""
    policies = [load_deploy_policy()]
    for stack, needed in declared_needs.items():
        refused = [n[:2] for n in needed if not allows(policies, *n)]
        assert refused == [], f"{stack}: the deploy role refuses {refused}"


def test_deploy_role_grants_nothing_the_stacks_do_not_use(
    declared_needs: dict[str, list[Need]],
) -> None:
    """Every action of deploy-role-policy.json is one the stacks' resources or smoke test need."""
    used = {action for needed in declared_needs.values() for action, _, _ in needed}
    granted = {
        a
        for s in load_deploy_policy()["Statement"]
        if s["Effect"] == "Allow"
        for a in as_list(s["Action"])
    }
    assert granted - used == set()


def escapes_of(scoped: list[Need]) -> list[Need]:
    """Each scoped call on another name (``other-`` for ``skdeploy-``) or condition value."""
    escapes = [
        (action, resource.replace("skdeploy-", "other-"), context)
        for action, resource, context in scoped
        if "skdeploy-" in resource
    ]
    escapes += [
        (action, resource, {**context, key: "other"})
        for action, resource, context in scoped
        for key in context
    ]
    return escapes


def test_deploy_role_refuses_each_call_outside_its_names_and_conditions(
    declared_needs: dict[str, list[Need]],
) -> None:
    """Calls granted on named resources are refused on other names and other condition values."""
    policy = load_deploy_policy()
    anywhere = {
        a
        for s in policy["Statement"]
        if as_list(s["Resource"]) == ["*"]
        for a in as_list(s["Action"])
    }
    needed = {(a, r, tuple(c.items())) for n in declared_needs.values() for a, r, c in n}
    scoped = [(a, r, dict(c)) for a, r, c in sorted(needed) if a not in anywhere]
    escapes = escapes_of(scoped)
    assert len(escapes) > len(scoped)
    allowed = [e[:2] for e in escapes if allows([policy], *e)]
    assert allowed == []


def test_extensions_cover_the_optional_settings_that_the_base_policy_does_not(
    optional_needs: list[Need],
) -> None:
    """With the optional settings, the role with the extensions allows every call; without, not."""
    base = [load_deploy_policy()]
    refused = [n[:2] for n in optional_needs if not allows([*base, load_extensions()], *n)]
    assert refused == []
    assert [n for n in optional_needs if not allows(base, *n)] != []


def only(statement: dict[str, Any]) -> dict[str, Any]:
    """A policy of ``statement`` alone."""
    return {"Version": "2012-10-17", "Statement": [statement]}


def key_needs(optional_needs: list[Need], api_and_optional_needs: list[Need]) -> list[Need]:
    """The calls of the runs with a key that neither the base policy nor the api extension allow."""
    others = [load_deploy_policy(), load_policy(API_EXTENSION)]
    return [n for n in optional_needs + api_and_optional_needs if not allows(others, *n)]


def test_extensions_grant_only_what_the_optional_settings_add(
    declared_needs: dict[str, list[Need]],
    optional_needs: list[Need],
    api_needs: list[Need],
    api_and_optional_needs: list[Need],
) -> None:
    """Each action on each resource of the KMS extension serves a call only a key adds; no more."""
    added = key_needs(optional_needs, api_and_optional_needs)
    unused = [
        (statement["Sid"], action, resource)
        for statement in load_extensions()["Statement"]
        for action in as_list(statement["Action"])
        for resource in as_list(statement["Resource"])
        if not any(
            n[0].lower() == action.lower()
            and iam_pattern(resource).fullmatch(n[1])
            and allows([only(statement)], *n)
            for n in added
        )
    ]
    assert unused == []
    # Neither a committed stack nor `api` without a key needs anything the extension grants.
    kms = [load_extensions()]
    without_key = [*(n for needed in declared_needs.values() for n in needed), *api_needs]
    assert [n[:2] for n in without_key if allows(kms, *n)] == []


def test_extensions_refuse_each_call_outside_their_key_names_and_conditions(
    optional_needs: list[Need], api_and_optional_needs: list[Need]
) -> None:
    """Key calls on another key, name or condition value are refused by all three policies."""
    scoped = sorted(
        {(a, r, tuple(c.items())) for a, r, c in key_needs(optional_needs, api_and_optional_needs)}
    )
    other_key = OPTIONAL_KMS_KEY.replace("1234abcd", "9999ffff")
    escapes = escapes_of([(a, r, dict(c)) for a, r, c in scoped])
    escapes += [(a, other_key, dict(c)) for a, r, c in scoped if r == OPTIONAL_KMS_KEY]
    logs = f"arn:aws:logs:eu-west-1:{MOCK_ACCOUNT_ID}:log-group:"
    escapes += [
        (action, f"{logs}{group}", {})
        for action in ("logs:AssociateKmsKey", "logs:DisassociateKmsKey")
        for group in ("/aws/lambda/other-api", "/aws/codebuild/skdeploy-prod", "skdeploy-prod")
    ]
    assert any(":log-group:/aws/lambda/" in r for _, r, _ in scoped)
    # Every call is scoped to the key or to a name, so each has an escape above.
    unscoped = [(a, r) for a, r, _ in scoped if r != OPTIONAL_KMS_KEY and "skdeploy-" not in r]
    assert unscoped == []
    policies = [load_deploy_policy(), load_extensions(), load_policy(API_EXTENSION)]
    allowed = [e[:2] for e in escapes if allows(policies, *e)]
    assert allowed == []


def test_api_extension_covers_the_front_door_that_the_other_policies_do_not(
    api_needs: list[Need], api_and_optional_needs: list[Need]
) -> None:
    """With `api`, base + api extension allow every call (+ the KMS one with a key); base, not."""
    base = load_deploy_policy()
    api = load_policy(API_EXTENSION)
    refused = [n[:2] for n in api_needs if not allows([base, api], *n)]
    assert refused == []
    everything = [base, load_extensions(), api]
    refused = [n[:2] for n in api_and_optional_needs if not allows(everything, *n)]
    assert refused == []
    assert [n for n in api_needs if not allows([base], *n)] != []
    assert [n for n in api_and_optional_needs if not allows([base, load_extensions()], *n)] != []
    # The function's log group is encrypted with the key only where there is one, and only the
    # KMS extension allows that: `api` alone neither needs it nor gets it from its extension.
    encrypt = [n for n in api_and_optional_needs if n[0] == "logs:AssociateKmsKey"]
    assert any(":log-group:/aws/lambda/" in n[1] for n in encrypt)
    assert [n for n in api_needs if n[0] == "logs:AssociateKmsKey"] == []
    assert [n[:2] for n in encrypt if allows([base, api], *n)] == []


def test_api_extension_grants_only_what_the_front_door_adds(
    declared_needs: dict[str, list[Need]],
    api_needs: list[Need],
    api_and_optional_needs: list[Need],
) -> None:
    """Each action of each api statement serves a front-door call no other file allows; no more."""
    others = [load_deploy_policy(), load_extensions()]
    added = [n for n in api_needs + api_and_optional_needs if not allows(others, *n)]
    unused = [
        (statement["Sid"], action)
        for statement in load_policy(API_EXTENSION)["Statement"]
        for action in as_list(statement["Action"])
        if not any(n[0].lower() == action.lower() and allows([only(statement)], *n) for n in added)
    ]
    assert unused == []
    api = [load_policy(API_EXTENSION)]
    committed = [n[:2] for needed in declared_needs.values() for n in needed if allows(api, *n)]
    assert committed == []


def test_api_extension_refuses_each_call_outside_its_names_and_conditions(
    api_needs: list[Need], api_and_optional_needs: list[Need]
) -> None:
    """Front-door calls on other names, condition values or API Gateway paths are refused."""
    base = load_deploy_policy()
    policies = [base, load_policy(API_EXTENSION)]
    added = {
        (a, r, tuple(c.items()))
        for a, r, c in api_needs + api_and_optional_needs
        if not allows([base, load_extensions()], a, r, c)
    }
    scoped = [(a, r, dict(c)) for a, r, c in sorted(added)]
    escapes = escapes_of(scoped)
    api_id = "abcdefghij"
    gateway = "arn:aws:apigateway:eu-west-1::"
    lambda_ = "lambda.amazonaws.com"
    execution_role = f"arn:aws:iam::{MOCK_ACCOUNT_ID}:role/skdeploy-prod-execution-0123abc"
    function = f"arn:aws:lambda:eu-west-1:{MOCK_ACCOUNT_ID}:function:skdeploy-prod-api"
    escapes += [
        ("apigateway:POST", f"{gateway}/apis/{api_id}/authorizers", {}),
        ("apigateway:POST", f"{gateway}/apis/{api_id}/deployments", {}),
        ("apigateway:POST", f"{gateway}/restapis", {}),
        ("apigateway:POST", f"{gateway}/domainnames", {}),
        ("apigateway:POST", f"{gateway}/vpclinks", {}),
        ("apigateway:GET", f"{gateway}/apis", {}),
        ("apigateway:PATCH", f"{gateway}/apis/{api_id}/stages/prod", {}),
        ("apigateway:PATCH", f"{gateway}/account", {}),
        ("apigateway:DELETE", f"{gateway}/restapis/{api_id}", {}),
        ("apigateway:PUT", f"{gateway}/apis/{api_id}", {}),
        # an API without skdeploy's project tag: read, but neither changed nor deleted
        ("apigateway:DELETE", f"{gateway}/apis/{api_id}", {}),
        ("apigateway:PATCH", f"{gateway}/apis/{api_id}", {}),
        ("apigateway:POST", f"{gateway}/tags/{gateway}/restapis/{api_id}", {}),
        ("apigateway:TagResource", f"{gateway}/domainnames", {}),
        ("iam:PassRole", execution_role, {"iam:PassedToService": lambda_}),
        ("lambda:InvokeFunction", function, {}),
        ("lambda:PutFunctionConcurrency", function, {}),
    ]
    # API Gateway ids are random, so its calls are scoped by path (the explicit escapes above);
    # every other call the extension adds is scoped by name or condition, so it has an escape.
    unscoped = [
        (a, r) for a, r, _ in scoped if not a.startswith("apigateway:") and "skdeploy-" not in r
    ]
    assert unscoped == []
    allowed = [e[:2] for e in escapes if allows(policies, *e)]
    assert allowed == []


#: What base + api extension let the role do on *another* HTTP or WebSocket API (id below), one
#: without skdeploy's tags, as deploy/README.md describes it: path under
#: arn:aws:apigateway:<region>:: -> the verbs allowed. `*` spans `/` in allows(), so a stage named
#: "routes" is within reach of /apis/*/routes/*, and /apis/?????????? (its region `*`) matches the
#: tags path of an API too.
FOREIGN_API = "abcdefghij"
API_GATEWAY_REACH = {
    "/apis": {"POST", "TagResource"},
    f"/apis/{FOREIGN_API}": {"GET"},
    f"/apis/{FOREIGN_API}/integrations": {"POST"},
    f"/apis/{FOREIGN_API}/routes": {"POST"},
    f"/apis/{FOREIGN_API}/stages": {"POST", "TagResource"},
    f"/apis/{FOREIGN_API}/integrations/i1": {"GET", "PATCH", "DELETE"},
    f"/apis/{FOREIGN_API}/integrations/i1/integrationresponses/r1": {"GET", "PATCH", "DELETE"},
    f"/apis/{FOREIGN_API}/routes/r1": {"GET", "PATCH", "DELETE"},
    f"/apis/{FOREIGN_API}/routes/r1/routeresponses/r2": {"GET", "PATCH", "DELETE"},
    f"/apis/{FOREIGN_API}/routes/r1/requestparameters/k": {"GET", "PATCH", "DELETE"},
    f"/apis/{FOREIGN_API}/stages/$default": {"GET", "PATCH", "DELETE"},
    f"/apis/{FOREIGN_API}/stages/routes/routesettings/k": {"GET", "PATCH", "DELETE"},
    f"/apis/{FOREIGN_API}/stages/prod": set(),
    f"/apis/{FOREIGN_API}/stages/$default/accesslogsettings": set(),
    f"/apis/{FOREIGN_API}/authorizers": set(),
    f"/apis/{FOREIGN_API}/deployments": set(),
    f"/apis/{FOREIGN_API}/cors": set(),
    f"/apis/{FOREIGN_API}/models": set(),
    f"/tags/arn:aws:apigateway:eu-west-1::/apis/{FOREIGN_API}": {"GET", "POST", "DELETE"},
    f"/tags/arn:aws:apigateway:eu-west-1::/apis/{FOREIGN_API}/stages/prod": {"POST", "DELETE"},
    "/restapis": set(),
    "/domainnames": set(),
    "/vpclinks": set(),
}


def test_api_extension_reaches_other_apis_exactly_as_documented() -> None:
    """On another API, base + api extension allow the verbs deploy/README.md lists; a tag, more."""
    policies = [load_deploy_policy(), load_policy(API_EXTENSION)]
    gateway = "arn:aws:apigateway:eu-west-1::"
    verbs = ("GET", "POST", "PATCH", "DELETE", "PUT", "TagResource")

    def reach(path: str, context: dict[str, str]) -> set[str]:
        return {v for v in verbs if allows(policies, f"apigateway:{v}", gateway + path, context)}

    assert {path: reach(path, {}) for path in API_GATEWAY_REACH} == API_GATEWAY_REACH
    # The tag skdeploy's own API carries adds PATCH and DELETE of the API itself, and nothing else.
    tagged = {f"aws:ResourceTag/{PROJECT_TAG}": "skdeploy"}
    assert reach(f"/apis/{FOREIGN_API}", tagged) == {"GET", "PATCH", "DELETE"}


def test_inline_policies_of_each_role_fit_the_iam_size_quota() -> None:
    """Each role's inline policies total at most 10,240 characters; the boundary at most 6,144."""
    # IAM User Guide, "IAM and AWS STS quotas": a role's inline policies may total 10,240
    # characters; IAM does not count white space.
    roles = {
        "deploy": [load_deploy_policy(), load_extensions(), load_policy(API_EXTENSION)],
        "preview": [load_policy(PREVIEW_POLICY), load_policy(PREVIEW_API_EXTENSION)],
    }
    for role, policies in roles.items():
        size = sum(len(json.dumps(p, separators=(",", ":"))) for p in policies)
        assert size <= 10_240, f"{role}: {size} characters"
    # The permissions boundary is a customer managed policy: at most 6,144 characters (same quota
    # table), white space not counted either.
    boundary = load_policy(DEPLOY_DIR / "permissions-boundary-policy.json")
    assert len(json.dumps(boundary, separators=(",", ":"))) <= 6_144


def test_preview_role_is_read_only_and_within_the_deploy_role() -> None:
    """The PR-reachable role may only Get/Describe/List, on resources the deploy role manages."""
    deploy = [load_deploy_policy()]
    for statement in load_policy(PREVIEW_POLICY)["Statement"]:
        assert statement["Effect"] == "Allow"
        assert "Condition" not in statement
        for action in as_list(statement["Action"]):
            verb = action.split(":")[1]
            assert verb.startswith(("Get", "Describe", "List")), action
            for resource in as_list(statement["Resource"]):
                assert allows(deploy, action, resource), f"{action} on {resource}"


def test_preview_api_extension_reads_the_front_door_and_nothing_more() -> None:
    """It only reads (API Gateway's read is apigateway:GET), within the deploy role with `api`."""
    deploy = [load_deploy_policy(), load_policy(API_EXTENSION)]
    for statement in load_policy(PREVIEW_API_EXTENSION)["Statement"]:
        assert statement["Effect"] == "Allow"
        assert "Condition" not in statement
        for action in as_list(statement["Action"]):
            verb = action.split(":")[1]
            assert verb.startswith(("Get", "Describe", "List")) or action == "apigateway:GET"
            for resource in as_list(statement["Resource"]):
                assert allows(deploy, action, resource), f"{action} on {resource}"


def test_preview_api_extension_covers_each_front_door_read(api_needs: list[Need]) -> None:
    """Every read the api extension grants the deploy role, the preview role can make too."""
    base = [load_deploy_policy()]
    preview = [load_policy(PREVIEW_POLICY), load_policy(PREVIEW_API_EXTENSION)]
    reads = [
        n
        for n in api_needs
        if not allows(base, *n)
        and (n[0].split(":")[1].startswith(("Get", "Describe", "List")) or n[0] == "apigateway:GET")
    ]
    assert reads
    refused = [n[:2] for n in reads if not allows(preview, *n)]
    assert refused == []
