"""The ``async`` check of ``skdeploy smoke --async-s3-dir DIR``: every sample through
InvokeEndpointAsync, against ``skdeploy serve --s3-dir DIR``.

The request body is written under the stack's ``async.inputPath`` as
``<inputPath>/skdeploy-smoke-<uuid>.json`` (in ``DIR``, as the server maps S3), the endpoint is
called with that ``InputLocation``, and the predictions are read back from the
``OutputLocation`` it answers, then compared as the ``predictions`` check compares them. Local
endpoints only: against AWS it would need an input bucket and a wait for the queue, which this
check does not do.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import botocore.exceptions

from skdeploy.core.constants import CONTENT_JSON
from skdeploy.core.samples import CannotRun, Samples
from skdeploy.tooling.smoke.checks import compare_predictions
from skdeploy.tooling.smoke.clients import Answer, parse_predictions, shorten
from skdeploy.tooling.smoke.report import FAIL, Check

CHECK_ASYNC: Final = "async"


@dataclass(frozen=True)
class LocalAsync:
    """Where the ``async`` check writes its request: the server's S3 folder, the stack's input."""

    s3_dir: Path
    input_path: str  # the stack's async.inputPath, s3://bucket/prefix


def local_object(s3_dir: Path, uri: str) -> Path:
    """``s3://bucket/key`` as ``<s3_dir>/bucket/key``, as ``skdeploy serve --s3-dir`` maps it."""
    if not uri.startswith("s3://"):
        raise CannotRun(f"the endpoint answered a location that is not s3://: {uri}")
    return s3_dir.joinpath(*uri[len("s3://") :].split("/"))


def check_async(runtime: Any, endpoint_name: str, samples: Samples, where: LocalAsync) -> Check:
    """Every sample in one InvokeEndpointAsync; the output within tolerance of the expected."""
    s3_dir = where.s3_dir
    location = f"{where.input_path.rstrip('/')}/skdeploy-smoke-{uuid.uuid4()}.json"
    request = local_object(s3_dir, location)
    request.parent.mkdir(parents=True, exist_ok=True)
    request.write_text(json.dumps({"instances": samples.instances}))
    try:
        answer = runtime.invoke_endpoint_async(
            EndpointName=endpoint_name,
            InputLocation=location,
            ContentType=CONTENT_JSON,
            Accept=CONTENT_JSON,
        )
    except botocore.exceptions.ClientError as exc:
        error = exc.response.get("Error", {})
        return Check(CHECK_ASYNC, FAIL, f"{error.get('Code')}: {error.get('Message', '')}")
    finally:
        request.unlink(missing_ok=True)
    output = local_object(s3_dir, answer["OutputLocation"])
    failure = local_object(s3_dir, answer.get("FailureLocation") or answer["OutputLocation"])
    if not output.is_file():
        why = shorten(failure.read_text()) if failure.is_file() else "nothing was written"
        return Check(CHECK_ASYNC, FAIL, f"no output at {answer['OutputLocation']}: {why}")
    parsed = parse_predictions(Answer(200, output.read_text()), len(samples.instances))
    if isinstance(parsed, str):
        return Check(CHECK_ASYNC, FAIL, f"{answer['OutputLocation']}: {parsed}")
    verdict, detail = compare_predictions(parsed, samples)
    return Check(CHECK_ASYNC, verdict, f"{detail}, through {answer['OutputLocation']}")
