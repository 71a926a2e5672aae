"""Security scans: bandit over the code that ships or runs, and no plain-text secrets in stacks/.

bandit runs at every severity and confidence over ``skdeploy/`` and ``inference/``. Three rules
are off for the whole code base, each for the reason in :data:`SKIPPED_RULES`; every other
finding must be fixed or carry ``# nosec BXXX - reason`` on its line. A bare ``# nosec`` (which
silences every rule on the line and says nothing) is refused.

Stack files: Pulumi keeps a secret set with ``pulumi config set --secret`` as
``key: {secure: <ciphertext>}``. Any other value whose key names a secret (password, secret,
token, key, credential; skdeploy's own settings excepted, they are refused as secrets anyway),
or that looks like one (an AWS access key id, a 40-character secret access key, a private key),
is a leak waiting to be committed.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from skdeploy.core.settings import SETTINGS
from tests.support import REPO

#: What bandit scans: everything skdeploy runs or ships (the handlers go into model.tar.gz).
SCANNED = ("skdeploy", "inference")

#: bandit rules off for the whole code base, and why. The dangerous neighbours stay on: B602
#: (shell=True), B605/B606 (os.system, os.spawn*), B607 (partial executable path), B301 (pickle
#: loads), B506 (yaml.load), B105/B106 (hard-coded passwords)...
SKIPPED_RULES = {
    "B101": "asserts only restate invariants for mypy's narrowing (a value a branch left unset "
    "has already been reported as a problem; pickletools' opcode argument types); no check "
    "depends on them running, so python -O changes nothing",
    "B404": "importing subprocess is how skdeploy starts uv, gunicorn and the runtime's "
    "Python; the calls themselves are what matters, and B602/B605/B606/B607 check those",
    "B603": "every subprocess call passes a list argv and no shell (ruff's S603 is ignored "
    "project-wide for the same reason); the executables are uv, the runtime virtualenv's "
    "python and git, never user input",
}

#: ``# nosec`` must name its rules and give a reason: ``# nosec B105 - a Pulumi type token``.
JUSTIFIED_NOSEC = re.compile(r"#\s*nosec\s+B\d{3}(\s*,\s*B\d{3})*\s+-\s+\S")


def bandit(*paths: Path | str, skip: tuple[str, ...] = tuple(SKIPPED_RULES)) -> dict[str, Any]:
    """bandit's JSON report for ``paths`` (the tool environment's bandit, full severity)."""
    command = [sys.executable, "-m", "bandit", "-r", "-q", "-f", "json"]
    if skip:
        command += ["--skip", ",".join(skip)]
    completed = subprocess.run(
        [*command, *map(str, paths)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode in (0, 1), completed.stderr  # 1: there are findings
    report: dict[str, Any] = json.loads(completed.stdout)
    return report


def _flagged_line(result: dict[str, Any]) -> str:
    """The flagged line from bandit's numbered code excerpt (which starts a line earlier)."""
    prefix = f"{result['line_number']} "
    for line in str(result["code"]).splitlines():
        if line.startswith(prefix):
            return line[len(prefix) :].strip()
    return ""


def described(results: list[dict[str, Any]]) -> list[str]:
    """One line per bandit finding: where, which rule, what, and the flagged code."""
    return [
        f"{r['filename']}:{r['line_number']} {r['test_id']} ({r['issue_severity']}): "
        f"{r['issue_text']} | {_flagged_line(r)}"
        for r in results
    ]


def test_bandit_finds_nothing_unjustified_in_skdeploy_and_inference() -> None:
    """bandit at every severity reports no finding without a rule-level or inline justification."""
    report = bandit(*SCANNED)
    assert report["errors"] == [], "files bandit could not scan"
    assert described(report["results"]) == []


def test_every_nosec_names_its_rule_and_a_reason() -> None:
    """No bare ``# nosec``: each names the bandit rule(s) it silences and says why."""
    unjustified = [
        f"{path.relative_to(REPO)}:{number}: {line.strip()}"
        for folder in SCANNED
        for path in sorted((REPO / folder).rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if re.search(r"#\s*nosec", line) and not JUSTIFIED_NOSEC.search(line)
    ]
    assert unjustified == []


BAD_CODE = """
import subprocess
import pickle

PASSWORD = "hunter2"


def run(command, data):
    subprocess.call(command, shell=True)
    return pickle.loads(data)
"""


def test_the_scan_with_its_skips_still_catches_shells_pickles_and_passwords(
    tmp_path: Path,
) -> None:
    """The skipped rules hide nothing dangerous: shell=True, pickle.loads, a password are found."""
    (tmp_path / "bad.py").write_text(BAD_CODE)
    report = bandit(tmp_path)
    found = {r["test_id"] for r in report["results"]}
    assert {"B602", "B301", "B105"} <= found


# --- Secrets in stack files ----------------------------------------------------------------------

SECRET_NAME = re.compile(r"password|secret|token|key|credential", re.IGNORECASE)
#: skdeploy's own settings that only look secret by name; parse_settings refuses any skdeploy
#: setting given as a secret, so none of them may hold one.
NON_SECRET_KEYS = frozenset(s.key for s in SETTINGS if SECRET_NAME.search(s.key))
AWS_ACCESS_KEY_ID = re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")
#: An AWS secret access key: 40 characters of base64; hex digests (lower-case, no '/' or '+')
#: of the same length are not flagged.
BASE64_SECRET = re.compile(r"(?<![A-Za-z0-9/+=])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])")
PRIVATE_KEY = re.compile(r"-----BEGIN ([A-Z]+ )*PRIVATE KEY-----")


def _looks_secret(value: str) -> str | None:
    if AWS_ACCESS_KEY_ID.search(value):
        return "an AWS access key id"
    if PRIVATE_KEY.search(value):
        return "a private key"
    for match in BASE64_SECRET.finditer(value):
        token = match.group()
        if re.search(r"[A-Z]", token) and re.search(r"[a-z]", token) and re.search(r"\d", token):
            return "a 40-character base64 secret"
    return None


def _is_pulumi_secret(value: object) -> bool:
    return isinstance(value, dict) and set(value) == {"secure"}


def _walk(value: object, path: str, named_secret: bool) -> Iterator[str]:
    """Problems in one config value: plain text under a secret name, or text that looks secret."""
    if _is_pulumi_secret(value):
        return
    if isinstance(value, dict):
        for key, child in value.items():
            secret_name = named_secret or bool(SECRET_NAME.search(str(key)))
            yield from _walk(child, f"{path}.{key}", secret_name)
        return
    if isinstance(value, list):
        for index, child in enumerate(value):
            yield from _walk(child, f"{path}[{index}]", named_secret)
        return
    if named_secret and value is not None:
        yield f"{path}: a secret by its name, in plain text (use `pulumi config set --secret`)"
        return
    if isinstance(value, str):
        kind = _looks_secret(value)
        if kind is not None:
            yield f"{path}: looks like {kind}, in plain text (use `pulumi config set --secret`)"


def secret_findings(stack_file: Path) -> list[str]:
    """Every plain-text secret in a stack file's ``config:``, as ``key: what is wrong``."""
    document = yaml.safe_load(stack_file.read_text()) or {}
    config = document.get("config") or {}
    findings: list[str] = []
    for full_key, value in config.items():
        name = str(full_key).split(":", 1)[-1]
        named = bool(SECRET_NAME.search(name)) and not (
            str(full_key).startswith("skdeploy:") and name in NON_SECRET_KEYS
        )
        findings += _walk(value, str(full_key), named)
    return findings


def test_the_committed_stacks_hold_no_plain_text_secret() -> None:
    """Every stacks/*.yaml value that names or looks like a secret is a Pulumi `secure:` value."""
    stack_files = sorted((REPO / "stacks").glob("*.yaml"))
    assert stack_files
    assert {str(f.name): secret_findings(f) for f in stack_files} == {
        str(f.name): [] for f in stack_files
    }


def test_only_kms_key_arn_is_a_skdeploy_setting_named_like_a_secret() -> None:
    """The exemption list is exactly kmsKeyArn: a new secret-looking setting gets reviewed here."""
    assert frozenset({"kmsKeyArn"}) == NON_SECRET_KEYS


@pytest.mark.parametrize(
    ("config", "problem"),
    [
        pytest.param({"aws:secretKey": "plain"}, "aws:secretKey: a secret by its name", id="name"),
        pytest.param({"app:dbPassword": 1234}, "app:dbPassword: a secret by its name", id="number"),
        pytest.param(
            {"app:settings": {"apiToken": "abc"}},
            "app:settings.apiToken: a secret by its name",
            id="nested-name",
        ),
        pytest.param(
            {"app:credentials": {"user": "me", "pass": {"secure": "v1:AAAA"}}},
            "app:credentials.user: a secret by its name",
            id="under-a-secret-name",
        ),
        pytest.param(
            {"skdeploy:tags": {"owner": "AKIAIOSFODNN7EXAMPLE"}},
            "skdeploy:tags.owner: looks like an AWS access key id",
            id="access-key-id",
        ),
        pytest.param(
            {"app:blob": ["x", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"]},
            "app:blob[1]: looks like a 40-character base64 secret",
            id="secret-access-key",
        ),
        pytest.param(
            {"app:tls": "-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----"},
            "app:tls: looks like a private key",
            id="private-key",
        ),
        pytest.param(
            {"other:kmsKeyArn": "arn"},
            "other:kmsKeyArn: a secret by its name",
            id="exemption-is-skdeploy-only",
        ),
    ],
)
def test_a_plain_text_secret_in_a_stack_file_is_found(
    tmp_path: Path, config: dict[str, object], problem: str
) -> None:
    """A secret-named key or a secret-looking value outside `secure:` is reported by key."""
    stack = tmp_path / "Pulumi.bad.yaml"
    stack.write_text(yaml.safe_dump({"config": {"aws:region": "us-east-1", **config}}))
    findings = secret_findings(stack)
    assert len(findings) == 1, findings
    assert findings[0].startswith(problem)


def test_secure_values_and_look_alikes_are_not_findings(tmp_path: Path) -> None:
    """`secure:` values, skdeploy:kmsKeyArn, hex digests and ARNs are not reported."""
    stack = tmp_path / "Pulumi.good.yaml"
    stack.write_text(
        yaml.safe_dump(
            {
                "config": {
                    "aws:region": "us-east-1",
                    "aws:secretKey": {"secure": "v1:Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4MTIzNDU2Nzg="},
                    "app:db": {"password": {"secure": "v1:AAAA"}},
                    "skdeploy:kmsKeyArn": "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab",
                    "app:commit": "0123456789abcdef0123456789abcdef01234567",
                    "skdeploy:imageUri": "683313688378.dkr.ecr.us-east-1.amazonaws.com/"
                    "sagemaker-scikit-learn:1.2-1-cpu-py3",
                }
            }
        )
    )
    assert secret_findings(stack) == []
