"""``skdeploy build`` (the stack's artifact) and ``skdeploy runtime`` (the runtime virtualenv)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from skdeploy.core import artifact
from skdeploy.core.constants import BUILD_DIR
from skdeploy.core.frameworks import FRAMEWORKS, get_framework
from skdeploy.tooling import runtime
from skdeploy.tooling.common import EXIT_OK, add_stack_arguments, progress, stack_settings


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


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``build`` and ``runtime``."""
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
