"""The ``skdeploy`` command line: argparse wiring only, one subcommand per concept.

Each command lives in its own module, which registers its parser (:mod:`skdeploy.tooling.commands`
lists them); exit codes and the error handling shared by every command are in
:mod:`skdeploy.tooling.common`: 0 success, 1 a check failed, 2 cannot run (bad arguments, bad
settings, missing tools), with the reason on one line to stderr.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from skdeploy.tooling.commands import REGISTRARS
from skdeploy.tooling.common import EXIT_CANNOT_RUN, EXIT_FAILED, EXIT_OK, run_handler

__all__ = ["EXIT_CANNOT_RUN", "EXIT_FAILED", "EXIT_OK", "build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The full parser; each command module adds its own subcommand."""
    parser = argparse.ArgumentParser(
        prog="skdeploy",
        description="Ship a pretrained scikit-learn model to a SageMaker endpoint, checked offline",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for register in REGISTRARS:
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``skdeploy`` console script and ``python -m skdeploy``."""
    return run_handler(build_parser().parse_args(argv))
