"""Preflight of sizes: the model fits each variant's memory, each sample fits one request."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from skdeploy.core.constants import MAX_PAYLOAD_BYTES, MAX_SERVERLESS_PAYLOAD_BYTES, SAMPLES_FILE
from skdeploy.core.settings import load_stack_settings
from skdeploy.tooling import cli
from tests.preflight_support import (
    STACK,
    check_json,
    copy_folder,
    messages,
    project,
    static,
    write_samples,
)

# --- sizes --------------------------------------------------------------------------------------

#: Bytes the model file is padded to: over 70 % of 4 GiB once per each of 2 workers (ml.t2.medium)
#: and of a 2048 MB serverless endpoint, under it for ml.r5.2xlarge and 3072 MB.
PADDED_MODEL_BYTES = 1_600_000_000


@pytest.mark.parametrize(
    ("config", "refusal"),
    [
        ({"instanceType": "ml.t2.medium"}, "loaded by 2 workers need about 3.2 GB"),
        ({"instanceType": "ml.r5.2xlarge"}, None),
        ({"serverless": {"memoryMb": 2048}}, "of the 2048 MB of the serverless endpoint"),
        ({"serverless": {"memoryMb": 3072}}, None),
    ],
)
def test_a_model_too_large_for_the_endpoint_memory_is_refused(
    tmp_path: Path, config: dict[str, object], refusal: str | None
) -> None:
    """1.6 GB of model: refused on ml.t2.medium and 2 GB serverless, fine on bigger memory.

    The committed joblib is padded with a sparse hole (joblib and the inspection stop at the
    pickle's STOP opcode), so the file really is 1.6 GB, against the real memory table, without
    writing 1.6 GB.
    """
    copy = project(tmp_path, config)
    os.truncate(copy / "model" / "model.joblib", PADDED_MODEL_BYTES)
    report = static(copy)
    assert messages(report, "pickle") == []  # still a valid joblib
    errors = messages(report, "sizes")
    if refusal is None:
        assert errors == []
    else:
        (error,) = errors
        assert "model files of 1600 MB" in error
        assert refusal in error


def test_each_variant_is_held_to_its_own_instance_memory(tmp_path: Path) -> None:
    """The 1.6 GB challenger on ml.t2.medium is refused by name; the champion on its own is fine."""
    variants = [
        {"name": "champion", "instanceType": "ml.t2.medium"},
        {"name": "challenger", "modelDir": "big", "instanceType": "ml.t2.medium"},
    ]
    copy = project(tmp_path, {"variants": variants})
    os.truncate(copy_folder(copy, "model", "big") / "model.joblib", PADDED_MODEL_BYTES)
    (error,) = messages(static(copy), "sizes")
    assert error.startswith("challenger: model files of 1600 MB loaded by 2 workers")
    shadow = {"name": "shadow", "modelDir": "big", "instanceType": "ml.r5.2xlarge"}
    roomy = [{**variants[0]}, {**variants[1], "instanceType": "ml.r5.2xlarge"}]
    copy = project(tmp_path / "roomy", {"variants": roomy, "shadow": shadow})
    os.truncate(copy_folder(copy, "model", "big") / "model.joblib", PADDED_MODEL_BYTES)
    assert messages(static(copy), "sizes") == []


def test_each_variants_samples_are_checked_before_the_deploy(tmp_path: Path) -> None:
    """A challenger's unusable samples.json is found statically, named by its folder."""
    variants = [{"name": "champion"}, {"name": "challenger", "modelDir": "model2"}]
    copy = project(tmp_path, {"variants": variants})
    (copy_folder(copy, "model", "model2") / SAMPLES_FILE).write_text('{"instances": 3}')
    (error,) = messages(static(copy), "sizes")
    assert error.startswith("model2/samples.json cannot be used")


def test_a_variants_requirements_turn_isolation_off_or_refuse_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """requirements.txt in a variant's handlers: isolation defaults off, and `true` is refused."""
    variants = [{"name": "champion"}, {"name": "challenger", "inferenceDir": "handlers2"}]
    copy = project(tmp_path, {"variants": variants})
    handlers = copy_folder(copy, "inference", "handlers2")
    (handlers / "requirements.txt").write_text("lightgbm==4.3.0\n")
    assert not load_stack_settings(copy, STACK).network_isolation
    warnings = messages(static(copy), "requirements", "warning")
    assert any(w.startswith("handlers2/requirements.txt is installed") for w in warnings)

    copy = project(tmp_path / "isolated", {"variants": variants, "networkIsolation": True})
    (copy_folder(copy, "inference", "handlers2") / "requirements.txt").write_text("lightgbm\n")
    code, report = check_json(copy, capsys)
    assert code == cli.EXIT_FAILED
    (finding,) = report["findings"]
    assert "networkIsolation" in finding["message"]
    assert "requirements.txt exists in handlers2" in finding["message"]


@pytest.mark.parametrize(
    ("config", "row_bytes", "limit"),
    [
        ({}, MAX_PAYLOAD_BYTES + 100, MAX_PAYLOAD_BYTES),
        ({}, MAX_SERVERLESS_PAYLOAD_BYTES + 100, None),
        ({"serverless": {"memoryMb": 2048}}, MAX_SERVERLESS_PAYLOAD_BYTES + 100, 4_000_000),
    ],
)
def test_a_sample_too_large_for_one_request_is_refused(
    tmp_path: Path, config: dict[str, object], row_bytes: int, limit: int | None
) -> None:
    """A sample over 6 MiB (instances) or 4 MB (serverless) cannot be sent: refused by name."""
    copy = project(tmp_path, config)
    write_samples(copy, [[0.5] * (row_bytes // 4)])  # "0.5," per feature
    errors = messages(static(copy), "sizes")
    if limit is None:
        assert errors == []
    else:
        (error,) = errors
        assert f"samples.json: sample 0 alone is over the {limit}-byte payload limit" in error


def test_a_large_samples_file_is_fine_when_its_requests_fit(tmp_path: Path) -> None:
    """A samples.json over 6 MiB of small rows passes: it is sent in several requests."""
    copy = project(tmp_path)
    path = write_samples(copy, [[1.5] * 1000] * 1700)  # 1,700 rows of 4 kB
    assert path.stat().st_size > MAX_PAYLOAD_BYTES
    assert messages(static(copy), "sizes") == []
