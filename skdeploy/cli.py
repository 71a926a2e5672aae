"""The ``skdeploy`` command line: one subcommand per concept, each registered by its module.

Exit codes, for every command: 0 success, 1 a check failed, 2 cannot run (bad arguments, bad
settings, missing tools); the reason is printed on one line to stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from skdeploy import artifact, runtime
from skdeploy.constants import BUILD_DIR
from skdeploy.frameworks import FRAMEWORKS, get_framework
from skdeploy.settings import EndpointSettings, SettingsError, load_stack_settings

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CANNOT_RUN = 2

Handler = Callable[[argparse.Namespace], int]


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


def _build(args: argparse.Namespace) -> int:
    settings = stack_settings(args)
    built = artifact.build_for_settings(settings, progress=progress)
    if args.json:
        print(json.dumps(built.to_json()))
    else:
        members = ", ".join(built.members)
        print(f"{built.path}\n  sha256 {built.sha256}\n  {built.bytes} bytes: {members}")
    return EXIT_OK


def _runtime(args: argparse.Namespace) -> int:
    if args.framework:
        framework = get_framework(args.framework)
        build_dir = Path(args.project_dir).resolve() / BUILD_DIR
    else:
        settings = stack_settings(args)
        framework = settings.framework
        build_dir = settings.project_dir / BUILD_DIR
    python = runtime.ensure_runtime(framework, build_dir, progress=progress)
    print(python)
    return EXIT_OK


def _register_core(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    build = sub.add_parser("build", help="build the stack's deterministic model.tar.gz")
    add_stack_arguments(build)
    build.add_argument("--json", action="store_true", help='print {"path", "sha256", "bytes"}')
    build.set_defaults(handler=_build)

    rt = sub.add_parser(
        "runtime", help="build (or reuse) the container-faithful virtualenv; print its python"
    )
    add_stack_arguments(rt)
    rt.add_argument(
        "--framework", choices=sorted(FRAMEWORKS), help="a framework version instead of a stack's"
    )
    rt.set_defaults(handler=_runtime)


def build_parser() -> argparse.ArgumentParser:
    """The full parser; each command module adds its own subcommand."""
    from skdeploy import commands

    parser = argparse.ArgumentParser(
        prog="skdeploy",
        description="Ship a pretrained scikit-learn model to a SageMaker endpoint, checked offline",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _register_core(sub)
    for register in commands.REGISTRARS:
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``skdeploy`` console script and ``python -m skdeploy``."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except SettingsError as exc:
        print(f"skdeploy: {exc}", file=sys.stderr)
        return EXIT_CANNOT_RUN
    except (artifact.ArtifactError, runtime.RuntimeUnavailable) as exc:
        print(f"skdeploy: {exc}", file=sys.stderr)
        return EXIT_CANNOT_RUN
    except OSError as exc:  # a full disk, a missing permission: cannot run, not a failed check
        print(f"skdeploy: {exc}", file=sys.stderr)
        return EXIT_CANNOT_RUN
    except KeyboardInterrupt:
        return 130
