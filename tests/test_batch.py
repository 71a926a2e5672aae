"""``skdeploy batch``: SageMaker's splitting and batching, the local run through a real local
endpoint, bad records, and the CreateTransformJob request (botocore's model, moto).

Over 400 lines on purpose: the one test module of the batch package, in four sections (splitting,
local, settings, remote) that share its helpers; split it by section if it grows.
"""

from __future__ import annotations

import argparse
import json
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.validate import ParamValidator

from skdeploy.core.settings import BatchSettings, SettingsError, load_stack_settings
from skdeploy.tooling.batch import (
    Answer,
    Endpoint,
    MiniBatch,
    Record,
    concurrency,
    count_output_records,
    mini_batches,
    read_records,
    run_local_batch,
    run_remote,
    run_transform_job,
    score,
    transform_job_request,
)
from skdeploy.tooling.batch import command as batch_command
from skdeploy.tooling.batch.remote import TransformJob
from skdeploy.tooling.cli import main
from tests.conftest import TEST_REGION, LocalEndpoint, make_project
from tests.support import REPO

ROWS = 100_000
MODEL = REPO / "model" / "model.joblib"

#: Runs in the runtime: the model's own predictions for a CSV file, one per line, as JSON.
PREDICT = (
    "import json, sys, joblib, numpy as np\n"
    "model = joblib.load(sys.argv[1])\n"
    "rows = np.loadtxt(sys.argv[2], delimiter=',', ndmin=2)\n"
    "print(json.dumps(model.predict(rows).tolist()))\n"
)


def direct_predictions(runtime_python: Path, rows: list[float], tmp_path: Path) -> list[float]:
    """``model.predict`` on every row at once, in the container's Python."""
    data = tmp_path / "direct.csv"
    data.write_text("".join(f"{v!r}\n" for v in rows))
    result = subprocess.run(
        [str(runtime_python), "-c", PREDICT, str(MODEL), str(data)],
        capture_output=True,
        text=True,
        check=True,
    )
    return [float(v) for v in json.loads(result.stdout)]


def feature_values(count: int) -> list[float]:
    """Months of experience with many digits, so 100,000 rows need more than one 1 MB request."""
    return [round(12.0 + (n % 240) + n / 7919.0, 10) for n in range(count)]


# ---- splitting and packing, as SageMaker does ----


def test_line_split_makes_one_record_per_non_blank_line_with_its_line_number(
    tmp_path: Path,
) -> None:
    """Line split: a record per line, blank lines skipped, numbers counted from 1."""
    data = tmp_path / "in.csv"
    data.write_bytes(b"1\n2\r\n\n3\n")
    records = read_records(data, "Line")
    assert [(r.line, r.data) for r in records] == [(1, b"1"), (2, b"2"), (4, b"3")]
    assert [r.data for r in read_records(data, "None")] == [b"1\n2\r\n\n3"]


def test_multi_record_packs_records_up_to_the_payload_and_single_record_sends_each_alone() -> None:
    """MultiRecord fills each request up to MaxPayloadInMB; SingleRecord sends one per request."""
    records = [Record(Path("f"), n, b"x" * 9) for n in range(1, 11)]  # 10 bytes each with \n
    packed = list(mini_batches(records, "MultiRecord", 30))
    assert [len(b.records) for b in packed] == [3, 3, 3, 1]
    assert all(len(b.body) <= 30 for b in packed)
    assert [r for b in packed for r in b.records] == records
    assert [len(b.records) for b in mini_batches(records, "SingleRecord", 30)] == [1] * 10


def test_a_failed_mini_batch_is_retried_record_by_record_so_only_the_bad_one_fails() -> None:
    """One bad record in a mini-batch costs that record only, reported with its line."""
    calls: list[bytes] = []

    def invoke(body: bytes, content_type: str, accept: str) -> Answer:
        calls.append(body)
        if b"bad" in body:
            return Answer(400, b'{"error": "could not convert \'bad\'"}')
        return Answer(200, b"\n".join(b"p" + line for line in body.split()))

    batch = MiniBatch(
        tuple(Record(Path("in.csv"), n, d) for n, d in [(1, b"1"), (2, b"bad"), (3, b"3")])
    )
    scored = score(batch, invoke, "text/csv")
    results = scored.results
    assert scored.retried is not None
    assert "HTTP 400" in scored.retried
    assert results[0] == b"p1"
    assert results[2] == b"p3"
    failure = results[1]
    assert not isinstance(failure, bytes)
    assert (failure.line, str(failure)) == (
        2,
        'in.csv:2: HTTP 400: {"error": "could not convert \'bad\'"}',
    )
    assert len(calls) == 4


def test_an_answer_with_the_wrong_number_of_lines_is_not_written_as_the_records_answers() -> None:
    """An answer that does not hold a line per record cannot be matched to records: retried."""

    def invoke(body: bytes, content_type: str, accept: str) -> Answer:
        return Answer(200, b"only one line")

    batch = MiniBatch((Record(Path("f"), 1, b"1"), Record(Path("f"), 2, b"2")))
    results = score(batch, invoke, "text/csv").results
    assert results[0] == b"only one line"
    assert results[1] == b"only one line"
    three_lines = score(MiniBatch(batch.records), lambda *a: Answer(200, b"a\nb\nc"), "text/csv")
    assert all(not isinstance(r, bytes) for r in three_lines.results)


# ---- the local batch through a real local endpoint ----


def test_a_100000_row_csv_gives_the_model_s_own_predictions_in_input_order(
    local_endpoint: LocalEndpoint, runtime_python: Path, tmp_path: Path
) -> None:
    """100,000 CSV rows in 1 MB mini-batches, two in flight: every answer, in order, exact."""
    rows = feature_values(ROWS)
    data = tmp_path / "in" / "salaries.csv"
    data.parent.mkdir()
    data.write_text("".join(f"{v!r}\n" for v in rows))
    settings = BatchSettings(max_payload_mb=1, max_concurrent_transforms=2)
    assert len(list(mini_batches(read_records(data, "Line"), "MultiRecord", 2**20))) > 1
    summary = run_local_batch(
        [data], tmp_path / "out", settings, Endpoint(local_endpoint.url).invoke, concurrency=2
    )
    assert (summary.records, summary.written, summary.failures) == (ROWS, ROWS, [])
    out = tmp_path / "out" / "salaries.csv.out"
    assert summary.outputs == [out]
    answered = [float(line) for line in out.read_text().splitlines()]
    assert answered == direct_predictions(runtime_python, rows, tmp_path)


def test_a_json_lines_file_answers_one_json_object_per_record_in_order(
    local_endpoint: LocalEndpoint, runtime_python: Path, tmp_path: Path
) -> None:
    """JSON Lines in, application/jsonlines out: {"prediction": ...} per record, in order."""
    rows = feature_values(2000)
    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps([v]) + "\n" for v in rows))
    summary = run_local_batch(
        [data],
        tmp_path / "out",
        BatchSettings(),
        Endpoint(local_endpoint.url).invoke,
    )
    lines = (tmp_path / "out" / "rows.jsonl.out").read_text().splitlines()
    assert (summary.records, summary.written, len(lines)) == (2000, 2000, 2000)
    answered = [json.loads(line)["prediction"] for line in lines]
    assert answered == direct_predictions(runtime_python, rows, tmp_path)


def test_a_bad_record_is_reported_with_its_line_and_nothing_else_is_lost(
    local_endpoint: LocalEndpoint, runtime_python: Path, tmp_path: Path
) -> None:
    """One unparseable CSV line: it alone fails, by file and line; every other row is written."""
    rows = feature_values(500)
    lines = [f"{v!r}" for v in rows]
    lines.insert(250, "not-a-number")  # line 251 of the file
    data = tmp_path / "with-bad.csv"
    data.write_text("\n".join(lines) + "\n")
    summary = run_local_batch(
        [data], tmp_path / "out", BatchSettings(), Endpoint(local_endpoint.url).invoke
    )
    assert [(f.source, f.line) for f in summary.failures] == [(data, 251)]
    assert "HTTP 400" in summary.failures[0].message
    assert (summary.records, summary.written) == (501, 500)
    answered = [float(v) for v in (tmp_path / "out" / "with-bad.csv.out").read_text().split()]
    assert answered == direct_predictions(runtime_python, rows, tmp_path)


def test_the_command_scores_a_folder_and_exits_1_naming_the_bad_line(
    local_endpoint: LocalEndpoint, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``skdeploy batch --input DIR --endpoint-url URL``: a .out per file, the bad line named."""
    project = make_project(tmp_path / "project")
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "a.csv").write_text("12\n24\n")
    (folder / "b.jsonl").write_text('[36]\n"oops"\n[48]\n')
    argv = ["batch", "-s", "dev", "--project-dir", str(project), "--input", str(folder)]
    argv += ["--output", str(tmp_path / "out"), "--endpoint-url", local_endpoint.url]
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert f"{folder / 'b.jsonl'}:2: HTTP 400" in captured.err
    assert "5 records in 2 file(s), 4 written, 1 failed, 1 mini-batch(es) retried" in captured.out
    assert len((tmp_path / "out" / "a.csv.out").read_text().splitlines()) == 2
    assert len((tmp_path / "out" / "b.jsonl.out").read_text().splitlines()) == 2


def test_without_an_endpoint_url_the_command_serves_the_stack_for_the_run(
    runtime_python: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No --endpoint-url: ``skdeploy serve`` is started for the batch, and its answers written."""
    project = make_project(tmp_path / "project")
    data = tmp_path / "months.csv"
    data.write_text("12\n24\n36\n")
    argv = ["batch", "-s", "dev", "--project-dir", str(project), "--input", str(data)]
    assert main([*argv, "--output", str(tmp_path / "out")]) == 0
    assert "3 records in 1 file(s), 3 written, 0 failed" in capsys.readouterr().out
    answered = [float(v) for v in (tmp_path / "out" / "months.csv.out").read_text().split()]
    assert answered == direct_predictions(runtime_python, [12.0, 24.0, 36.0], tmp_path)


def test_the_endpoint_started_for_a_batch_takes_max_payload_mb_not_the_invoke_limit(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The transform agent is not held to InvokeEndpoint's 6 MB (serverless 4 MB): the server
    started for the batch accepts the stack's maxPayloadMb."""
    started: list[tuple[str, ...]] = []

    @contextmanager
    def fake_endpoint(project: Path, stack: str, logs: Path, *extra: str) -> Iterator[Any]:
        started.append(extra)
        yield argparse.Namespace(url="http://127.0.0.1:9")

    monkeypatch.setattr(batch_command, "background_endpoint", fake_endpoint)
    args = argparse.Namespace(endpoint_url=None, stack="dev", project_dir=tmp_path)
    with batch_command._local_endpoint(args, BatchSettings(max_payload_mb=20)) as endpoint:
        assert endpoint.url == "http://127.0.0.1:9"
    assert started == [("--max-payload-bytes", str(20 * 1024 * 1024))]


class _AskedEndpoint:
    """An endpoint whose ``/execution-parameters`` answers ``document`` (None: a 404)."""

    def __init__(self, document: dict[str, Any] | None) -> None:
        self.document, self.asked = document, 0

    def execution_parameters(self) -> dict[str, Any] | None:
        self.asked += 1
        return self.document


@pytest.mark.parametrize(
    ("setting", "document", "expected", "asked"),
    [
        (4, {"MaxConcurrentTransforms": 3}, 4, 0),
        (0, {"MaxConcurrentTransforms": 3}, 3, 1),
        (0, None, 1, 1),
        (0, {"MaxConcurrentTransforms": "many"}, 1, 1),
    ],
    ids=["the-setting", "asks-the-container", "no-answer", "a-bad-answer"],
)
def test_concurrency_is_the_setting_or_what_the_container_answers(
    setting: int, document: dict[str, Any] | None, expected: int, asked: int
) -> None:
    """maxConcurrentTransforms 0 asks /execution-parameters, as SageMaker does; else one."""
    endpoint = _AskedEndpoint(document)
    chosen = concurrency(BatchSettings(max_concurrent_transforms=setting), endpoint)  # type: ignore[arg-type]
    assert (chosen, endpoint.asked) == (expected, asked)


# ---- settings ----


def test_the_batch_settings_are_read_from_the_stack_and_checked(tmp_path: Path) -> None:
    """``skdeploy:batch`` becomes BatchSettings; a value out of range is refused by name."""
    project = make_project(
        tmp_path / "ok",
        config={"skdeploy:batch": {"strategy": "SingleRecord", "maxPayloadMb": 2}},
    )
    batch = load_stack_settings(project, "dev").batch
    assert (batch.strategy, batch.max_payload_mb, batch.split_type) == ("SingleRecord", 2, "Line")
    bad = make_project(tmp_path / "bad", config={"skdeploy:batch": {"maxPayloadMb": 101}})
    with pytest.raises(SettingsError, match=r"batch\.maxPayloadMb"):
        load_stack_settings(bad, "dev")
    with pytest.raises(ValueError, match="invalid batch: strategy = 'Sometimes'"):
        BatchSettings(strategy="Sometimes")


# ---- the remote batch: CreateTransformJob ----


def create_transform_job_shape() -> Any:
    """botocore's model of CreateTransformJob's input."""
    service = boto3.client("sagemaker", region_name=TEST_REGION).meta.service_model
    return service.operation_model("CreateTransformJob").input_shape


def _job(**settings: Any) -> TransformJob:
    return TransformJob(
        "skdeploy-model-abc",
        "s3://data-bucket/in/",
        "s3://data-bucket/out/",
        "application/jsonlines",
        BatchSettings(**settings),
    )


@pytest.mark.parametrize(
    "settings",
    [{}, {"strategy": "SingleRecord", "maxPayloadMb": 20, "maxConcurrentTransforms": 0}],
    ids=["defaults", "single-record"],
)
def test_the_transform_job_request_passes_botocore_validation(settings: dict[str, Any]) -> None:
    """CreateTransformJob built from the batch settings validates against botocore's model."""
    keys = {"strategy": "strategy", "maxPayloadMb": "max_payload_mb"}
    keys["maxConcurrentTransforms"] = "max_concurrent_transforms"
    request = transform_job_request(_job(**{keys[k]: v for k, v in settings.items()}), "job-1")
    report = ParamValidator().validate(request, create_transform_job_shape())
    assert not report.has_errors(), report.generate_report()
    assert request["TransformOutput"]["AssembleWith"] == "Line"
    assert request["TransformInput"]["SplitType"] == "Line"


def test_a_broken_transform_job_request_is_caught_by_the_validation() -> None:
    """The validation can fail: a payload as a string is refused."""
    request = transform_job_request(_job(), "job-1")
    request["MaxPayloadInMB"] = "6"
    report = ParamValidator().validate(request, create_transform_job_shape())
    assert report.has_errors()


class _SlowJobs:
    """A SageMaker client whose transform job is InProgress twice, then ends as ``end``."""

    def __init__(self, end: str) -> None:
        self.statuses = ["InProgress", "InProgress", end]
        self.created: list[dict[str, Any]] = []

    def create_transform_job(self, **request: Any) -> None:
        self.created.append(request)

    def describe_transform_job(self, TransformJobName: str) -> dict[str, Any]:
        status = self.statuses.pop(0)
        reason = "ClientError: bad input" if status == "Failed" else None
        return {"TransformJobStatus": status, "FailureReason": reason}


@pytest.mark.parametrize(
    ("end", "reason"), [("Completed", None), ("Failed", "ClientError: bad input")]
)
def test_the_job_is_polled_with_progress_until_it_ends(end: str, reason: str | None) -> None:
    """DescribeTransformJob is polled, a status line each time, until the job stops changing."""
    client = _SlowJobs(end)
    lines: list[str] = []
    sleeps: list[float] = []
    request = transform_job_request(_job(), "job-1")
    status, why, _ = run_transform_job(
        client, request, report=lines.append, poll_seconds=7, sleep=sleeps.append
    )
    assert (status, why) == (end, reason)
    assert client.created == [request]
    assert sleeps == [7, 7]
    assert lines[0] == "batch: created transform job job-1"
    assert [line.split()[2] for line in lines[1:]] == ["InProgress", "InProgress", end]


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """moto's AWS, with credentials that can reach nothing real."""
    from moto import mock_aws

    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": TEST_REGION,
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        yield


def test_the_transform_job_runs_against_moto_and_the_summary_counts_the_output(
    aws: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--input s3://`` creates the job on the stack-output model, polls it, counts .out lines."""
    sagemaker = boto3.client("sagemaker", region_name=TEST_REGION)
    s3 = boto3.client("s3", region_name=TEST_REGION)
    sagemaker.create_model(
        ModelName="skdeploy-model-abc",
        ExecutionRoleArn="arn:aws:iam::123456789012:role/skdeploy",
        PrimaryContainer={"Image": "683313688378.dkr.ecr.us-east-1.amazonaws.com/x:1"},
    )
    s3.create_bucket(Bucket="data-bucket")
    s3.put_object(Bucket="data-bucket", Key="out/a.csv.out", Body=b"1.5\n2.5\n3.5\n")
    s3.put_object(Bucket="data-bucket", Key="out/ignored.txt", Body=b"x\n")
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps({"endpointName": "e", "modelName": "skdeploy-model-abc"}))
    args = argparse.Namespace(
        input="s3://data-bucket/in/",
        output="s3://data-bucket/out/",
        outputs=str(outputs),
        content_type=None,
        region=TEST_REGION,
        poll_seconds=0.0,
        stack="dev",
        project_dir=tmp_path,
    )
    assert run_remote(args, BatchSettings(), sagemaker=sagemaker, s3=s3) == 0
    jobs = sagemaker.list_transform_jobs()["TransformJobSummaries"]
    assert len(jobs) == 1
    job = sagemaker.describe_transform_job(TransformJobName=jobs[0]["TransformJobName"])
    assert job["ModelName"] == "skdeploy-model-abc"
    assert (job["BatchStrategy"], job["MaxPayloadInMB"]) == ("MultiRecord", 6)
    out = capsys.readouterr().out
    assert "Completed" in out
    assert "3 records written" in out
    assert count_output_records(s3, "s3://data-bucket/out/") == 3
