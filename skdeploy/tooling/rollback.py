"""``skdeploy rollback -s STACK --to SHA``: pin the stack to an earlier, smoke-tested artifact.

It checks, in the stack's bucket, that the artifact's object exists and that its smoke record
says it passed (:func:`skdeploy.core.rollback.rollback_refusal`), then writes
``skdeploy:artifactSha256`` into the stack file. Nothing is deployed here: ``skdeploy plan``
shows the rollback (the Model replaced, tagged ``skdeploy:rollback``) and ``pulumi up`` applies
it, without a build or an upload. Removing the key builds from the project again.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

from skdeploy.core.rollback import PIN_KEY, pin_stack_text, rollback_refusal
from skdeploy.core.samples import CannotRun
from skdeploy.core.settings import stack_file
from skdeploy.tooling.common import EXIT_CANNOT_RUN, EXIT_FAILED, EXIT_OK, stack_settings
from skdeploy.tooling.history import AWS_ERRORS, add_bucket_arguments, artifact_record, stack_bucket

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def _sha256(text: str) -> str:
    if not _SHA256.match(text):
        raise argparse.ArgumentTypeError("must be a sha256: 64 lower-case hexadecimal digits")
    return text


def execute(args: argparse.Namespace, *, s3: Any | None = None) -> int:
    """Refuse a missing, untested or failed artifact by its sha (exit 1), else pin it (exit 0)."""
    settings = stack_settings(args)
    if settings.variants or settings.shadow is not None:
        print(
            f"skdeploy: rollback pins the single model of a stack; {args.stack} has variants or "
            "a shadow",
            file=sys.stderr,
        )
        return EXIT_CANNOT_RUN
    try:
        bucket = stack_bucket(args, s3)
        record = artifact_record(bucket, args.to)
    except CannotRun as exc:
        print(f"skdeploy: rollback cannot run: {exc}", file=sys.stderr)
        return EXIT_CANNOT_RUN
    except AWS_ERRORS as exc:
        print(f"skdeploy: rollback cannot read the artifact bucket: {exc}", file=sys.stderr)
        return EXIT_CANNOT_RUN
    refusal = rollback_refusal(args.to, bucket.name, record)
    if refusal is not None:
        print(f"skdeploy: rollback refused: {refusal}", file=sys.stderr)
        return EXIT_FAILED
    path = stack_file(Path(args.project_dir).resolve(), args.stack)
    path.write_text(pin_stack_text(path.read_text(encoding="utf-8"), args.to), encoding="utf-8")
    print(
        f"pinned stack {args.stack} to artifact {args.to} ({PIN_KEY} in {path.name}); "
        f"`skdeploy plan -s {args.stack}` shows the rollback, `pulumi up` applies it"
    )
    return EXIT_OK


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``skdeploy rollback``."""
    parser = sub.add_parser(
        "rollback",
        help="pin the stack to an earlier artifact in its bucket that passed its smoke test",
        description="Check that the artifact is in the stack's bucket and passed its smoke test, "
        f"then write {PIN_KEY} into the stack file (deploy it with `pulumi up`). Exit 0 pinned, "
        "1 refused, 2 cannot run.",
    )
    add_bucket_arguments(parser)
    parser.add_argument(
        "--to", required=True, type=_sha256, help="the sha256 of the artifact to serve again"
    )
    parser.set_defaults(handler=execute)
