"""What every command shares: exit codes, progress lines, the stack arguments, running a handler.

Kept apart from :mod:`skdeploy.tooling.cli` (the argparse wiring, which imports every command) so
that the command modules can use these without importing the CLI that imports them.

Exit codes, for every command: 0 success, 1 a check failed, 2 cannot run (bad arguments, bad
settings, missing tools); the reason is printed on one line to stderr.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from skdeploy.core.artifact import ArtifactError
from skdeploy.core.settings import EndpointSettings, SettingsError, load_stack_settings
from skdeploy.tooling.runtime import RuntimeUnavailable

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CANNOT_RUN = 2

Handler = Callable[[argparse.Namespace], int]
Registrar = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]


def progress(message: str) -> None:
    """Progress lines go to stderr so that ``--json`` output on stdout stays parseable."""
    print(f"skdeploy: {message}", file=sys.stderr, flush=True)


def add_stack_arguments(parser: argparse.ArgumentParser) -> None:
    """``--stack`` and ``--project-dir``, shared by every command that reads a stack."""
    parser.add_argument("--stack", "-s", default="dev", help="stack name (default: dev)")
    parser.add_argument(
        "--project-dir",
        type=Path,
        default=Path.cwd(),
        help="folder holding Pulumi.yaml and stacks/ (default: the current folder)",
    )


def stack_settings(args: argparse.Namespace) -> EndpointSettings:
    """Settings of ``--stack`` read from its stack file (raises SettingsError)."""
    return load_stack_settings(Path(args.project_dir).resolve(), args.stack)


#: What keeps a command from running, whichever command: exit 2 with the reason on one line. An
#: OSError is a full disk or a missing permission: cannot run, not a failed check.
CANNOT_RUN_ERRORS: tuple[type[Exception], ...] = (
    SettingsError,
    ArtifactError,
    RuntimeUnavailable,
    OSError,
)


def run_handler(args: argparse.Namespace) -> int:
    """Run the parsed command's handler, through :func:`guarded`."""
    handler: Handler = args.handler
    return guarded(lambda: handler(args))


def guarded(run: Callable[[], int]) -> int:
    """Run a command's function; :data:`CANNOT_RUN_ERRORS` are exit 2, Ctrl-C is 130.

    The one place where the error handling every command shares lives: the command line runs
    each handler through it, and ``skdeploy demo`` each step it borrows from another command.
    """
    try:
        return run()
    except CANNOT_RUN_ERRORS as exc:
        print(f"skdeploy: {exc}", file=sys.stderr)
        return EXIT_CANNOT_RUN
    except KeyboardInterrupt:
        return 130
