"""``skdeploy serve``: its arguments, the options they give, and the errors it reports."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from skdeploy.core.constants import ENV_TIMEOUT, ENV_WORKERS, INVOCATION_TIMEOUT_SECONDS
from skdeploy.core.settings import EndpointSettings
from skdeploy.tooling.common import (
    EXIT_CANNOT_RUN,
    EXIT_FAILED,
    add_stack_arguments,
    progress,
    stack_settings,
)
from skdeploy.tooling.local.extract import UnsafeArchiveError
from skdeploy.tooling.local.multimodel import serve_models
from skdeploy.tooling.local.options import DEFAULT_STARTUP_TIMEOUT, ServeError, ServeOptions
from skdeploy.tooling.local.serve import serve


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        return int(raw)
    except ValueError:
        raise ServeError(EXIT_CANNOT_RUN, f"{name}={raw!r} must be a whole number") from None


def options_from_args(args: argparse.Namespace, settings: EndpointSettings) -> ServeOptions:
    """Command-line flags, then the container's environment variables, then the defaults."""
    workers = args.workers if args.workers is not None else _env_int(ENV_WORKERS, 1)
    timeout = _env_int(ENV_TIMEOUT, INVOCATION_TIMEOUT_SECONDS)
    serverless = bool(args.serverless or settings.serverless is not None)
    problems = []
    if not 0 <= args.port <= 65535:
        problems.append(f"--port {args.port} is not a port number (0 picks a free one)")
    if workers < 1:
        problems.append(f"workers must be at least 1, got {workers}")
    if timeout < 1:
        problems.append(f"{ENV_TIMEOUT} must be at least 1 second, got {timeout}")
    if args.startup_timeout <= 0:
        problems.append("--startup-timeout must be positive")
    if args.max_payload_bytes is not None and args.max_payload_bytes < 1:
        problems.append("--max-payload-bytes must be positive")
    ready = args.ready_file
    if ready is not None:  # found out now, not after a build and a model load
        # Missing folders are created when the file is written: the nearest existing one counts
        # (a dangling symlink exists for mkdir, which then fails).
        folder = next(p for p in (ready.parent, *ready.parents) if p.exists() or p.is_symlink())
        if ready.is_dir():
            problems.append(f"--ready-file {ready} is a directory")
        elif not folder.is_dir():
            problems.append(f"--ready-file {ready}: {folder} is not a directory")
        elif not os.access(folder, os.W_OK | os.X_OK):
            problems.append(f"--ready-file {ready}: {folder} is not writable")
    s3_dir = getattr(args, "s3_dir", None)
    if s3_dir is not None and not s3_dir.is_dir():
        problems.append(f"--s3-dir {s3_dir} is not a directory")
    if problems:
        raise ServeError(EXIT_CANNOT_RUN, "; ".join(problems))
    return ServeOptions(
        host=args.host,
        port=args.port,
        workers=workers,
        timeout=timeout,
        startup_timeout=args.startup_timeout,
        serverless=serverless,
        max_payload_bytes=args.max_payload_bytes,
        ready_file=args.ready_file,
        s3_dir=s3_dir,
    )


def one_variant(settings: EndpointSettings, name: str | None) -> EndpointSettings:
    """The stack narrowed to the variant to serve: ``--variant``, else the first production one."""
    if name is None and not settings.several_models:
        return settings
    try:
        narrowed = settings.only_variant(name)
    except ValueError as exc:
        raise ServeError(EXIT_CANNOT_RUN, str(exc)) from None
    names = ", ".join(v.name for v in settings.served_variants)
    progress(f"serving variant {name or settings.served_variants[0].name} (the stack has {names})")
    return narrowed


def one_model(settings: EndpointSettings, name: str) -> EndpointSettings:
    """A multi-model stack narrowed to the model ``--model`` names (served as a single one)."""
    views = dict(settings.model_views)
    if name not in views:
        raise ServeError(
            EXIT_CANNOT_RUN,
            f"stack {settings.stack!r} has no model {name!r}; it serves " + ", ".join(views),
        )
    return views[name]


def _child_arguments(args: argparse.Namespace) -> tuple[str, ...]:
    """What each model's own server is started with besides its model, port and ready file."""
    extra: list[str] = ["--startup-timeout", str(args.startup_timeout)]
    if args.workers is not None:
        extra += ["--workers", str(args.workers)]
    return tuple(extra)


def _serve_command(args: argparse.Namespace) -> int:
    if sys.platform == "win32":
        print(
            "skdeploy: serve needs Linux or macOS (gunicorn does not run on Windows)",
            file=sys.stderr,
        )
        return EXIT_CANNOT_RUN
    settings = stack_settings(args)
    try:
        if settings.multi_model:
            if args.model is None:
                return serve_models(
                    settings, options_from_args(args, settings), extra=_child_arguments(args)
                )
            settings = one_model(settings, args.model)
        settings = one_variant(settings, args.variant)
        framework = settings.framework
        if not framework.local_runtime:
            raise ServeError(
                EXIT_CANNOT_RUN,
                f"framework {framework.version} cannot be served locally: {framework.refusal}",
            )
        return serve(settings, options_from_args(args, settings))
    except ServeError as exc:
        print(f"skdeploy: {exc}", file=sys.stderr)
        return exc.exit_code
    except UnsafeArchiveError as exc:
        print(f"skdeploy: {exc}", file=sys.stderr)
        return EXIT_FAILED


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``skdeploy serve``."""
    parser = sub.add_parser(
        "serve",
        help="serve the stack's model locally, like the real endpoint (no Docker)",
        description=(
            "Build the stack's model.tar.gz and serve it with the container's Python, packages "
            "and serving library. Answers /ping, /invocations and the SageMaker Runtime route "
            "POST /endpoints/<name>/invocations (point boto3 at it with endpoint_url=). "
            "Exit codes: 0 stopped, 1 the model failed to load or the server died, 2 cannot run."
        ),
    )
    add_stack_arguments(parser)
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)"
    )
    parser.add_argument(
        "--port",
        type=int,
        default=8080,
        help="port to listen on; 0 picks a free one (default: 8080)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help=f"gunicorn workers (default: ${ENV_WORKERS}, else 1)",
    )
    parser.add_argument(
        "--startup-timeout",
        type=float,
        default=DEFAULT_STARTUP_TIMEOUT,
        help="seconds to wait for model_fn and the first healthy /ping (default: 240)",
    )
    _add_endpoint_arguments(parser)
    parser.add_argument(
        "--ready-file",
        type=Path,
        default=None,
        help='write {"url", "endpoint_name", "pid", ...} as JSON here once healthy',
    )
    parser.set_defaults(handler=_serve_command)


def _add_endpoint_arguments(parser: argparse.ArgumentParser) -> None:
    """What the emulated endpoint is: its kind and limit, the variant, the folder for S3."""
    parser.add_argument(
        "--serverless",
        action="store_true",
        help="emulate a serverless endpoint: 4 MB payload limit and its oversize error",
    )
    parser.add_argument(
        "--max-payload-bytes",
        type=int,
        default=None,
        help="override the InvokeEndpoint body limit (default: 6 MiB, serverless 4 MB)",
    )
    parser.add_argument(
        "--variant",
        default=None,
        help="the production or shadow variant to serve (default: the first production one)",
    )
    parser.add_argument(
        "--model",
        default=None,
        help="serve only this model of a multi-model stack (default: all, routed by TargetModel)",
    )
    parser.add_argument(
        "--s3-dir",
        type=Path,
        default=None,
        help="a folder standing for S3 in InvokeEndpointAsync: s3://bucket/key is DIR/bucket/key",
    )
