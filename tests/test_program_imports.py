"""What ``pulumi up`` loads: the program imports the deploy path only, not the tools around it.

``pulumi up`` runs ``__main__.py`` → settings → the static checks → the component. None of that
needs the command line, the smoke test, the local runtime or an AWS SDK client (the provider
makes the AWS calls); importing them there slows every preview and widens what a deploy runs.
Each stack's program runs under Pulumi's mocks in a fresh interpreter, which then lists what it
imported. (``argparse`` is not on the list: Pulumi's own SDK imports it.)
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.support import REPO, STACKS

#: The AWS SDK, which the program must not import.
AWS_SDK = ("boto3", "botocore")
#: The probe's own harness: the one package of the tooling layer that is expected in the list.
HARNESS = "skdeploy.tooling.mockrun"


def forbidden(imported: set[str]) -> list[str]:
    """The AWS SDK and every tooling module (the harness and the package itself aside)."""
    return sorted(
        module
        for module in imported
        if module in AWS_SDK
        or module.startswith(tuple(f"{sdk}." for sdk in AWS_SDK))
        or (
            module.startswith("skdeploy.tooling.")
            and module != HARNESS
            and not module.startswith(f"{HARNESS}.")
        )
    )


_PROBE = """
import json, sys
from pathlib import Path
from skdeploy.tooling import mockrun
mockrun.run_program(Path(sys.argv[1]), sys.argv[2])
print(json.dumps(sorted(sys.modules)))
"""


@pytest.mark.parametrize("stack", STACKS)
def test_the_program_imports_no_tool_and_no_aws_sdk(stack: str) -> None:
    """Running each stack's program under mocks imports no tool and no AWS SDK module."""
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, str(REPO), stack],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    )
    imported = set(json.loads(result.stdout.splitlines()[-1]))

    assert "skdeploy.infra.program" in imported  # the probe did run the program
    assert forbidden(imported) == []
