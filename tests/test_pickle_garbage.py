"""Pickle inspection of garbage: capped decompression, lz4, a clear error for what is unreadable."""

from __future__ import annotations

import contextlib
import sys
import zipfile
import zlib
from pathlib import Path

import joblib
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.base import BaseEstimator
from sklearn.linear_model import LinearRegression
from sklearn.preprocessing import StandardScaler

from skdeploy.core.pickle.inspect import (
    InspectionLimits,
    PickleInspectionError,
    PickleReport,
    check_compatibility,
    inspect_pickle,
)
from tests.pickle_models import (
    FRAMEWORK_1_4,
    fit_models,
    write,
)

#: Files that are not joblib/pickle streams, and what the error must say.
NOT_PICKLES: dict[str, tuple[bytes, str]] = {
    "empty": (b"", "empty"),
    "text": (b"hello world\n", "not a readable joblib/pickle file"),
    "npy": (b"\x93NUMPY\x01\x00v\x00", ".npy"),
    "old joblib": (b"ZF0x00000000000000", "pre-0.10"),
    "corrupt zlib": (b"\x78\x9cthis is not deflate data", "corrupt"),
    "corrupt bz2": (b"BZh9 not really bzip2", "corrupt"),
    "corrupt xz": (b"\xfd7zXZ\x00 not really xz", "corrupt"),
    "future protocol": (b"\x80\x09N.", "protocol 9"),
    "no STOP": (b"\x80\x04N", "before the pickle's STOP"),
    "stack underflow": (b"\x80\x04R.", "stack is empty"),
    "memo miss": (b"\x80\x04h\x05.", "memo entry 5"),
}


@pytest.fixture(scope="module")
def fitted() -> dict[str, BaseEstimator]:
    return fit_models()


@pytest.fixture(scope="module")
def small_model_bytes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """A small LinearRegression dumped by joblib, uncompressed and zlib-compressed."""
    directory = tmp_path_factory.mktemp("small")
    model = LinearRegression().fit(np.arange(6.0).reshape(3, 2), [1.0, 2.0, 3.0])
    result = {}
    for name, compress in (("none", 0), ("zlib", ("zlib", 3))):
        path = directory / f"{name}.joblib"
        joblib.dump(model, path, compress=compress)
        result[name] = path.read_bytes()
    return result


# ------------------------------------------------------------------------------------------
# compression limits and lz4


def test_decompression_stops_at_max_bytes(tmp_path: Path) -> None:
    """A zip bomb (a 1 TiB BINBYTES8 of zeros, 64 MiB shown) is refused at the cap."""
    compressor = zlib.compressobj(9)
    parts = [compressor.compress(b"\x80\x04\x8e" + (1 << 40).to_bytes(8, "little"))]
    zeros = bytes(1 << 20)
    parts += [compressor.compress(zeros) for _ in range(64)]
    path = write(tmp_path / "bomb.joblib", b"".join(parts) + compressor.flush())
    assert path.stat().st_size < 1 << 20

    with pytest.raises(PickleInspectionError, match=r"pickleLimits\.maxStreamMb=8"):
        inspect_pickle(path, limits=InspectionLimits(max_stream_mb=8))
    with pytest.raises(PickleInspectionError, match="truncated"):
        inspect_pickle(path)


def test_a_real_model_larger_than_max_bytes_is_refused(tmp_path: Path) -> None:
    """max_bytes applies to the decompressed stream of an ordinary compressed model too."""
    path = tmp_path / "model.joblib"
    joblib.dump(StandardScaler().fit(np.zeros((2, 200_000))), path, compress=3)

    assert inspect_pickle(path).refused == ()
    with pytest.raises(PickleInspectionError, match=r"pickleLimits\.maxStreamMb=1 "):
        inspect_pickle(path, limits=InspectionLimits(max_stream_mb=1))


def test_lz4_files_need_lz4_installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the lz4 package an lz4-compressed file is refused, saying what is missing."""
    for name in ("lz4", "lz4.frame"):  # None in sys.modules: importing it raises ImportError
        monkeypatch.setitem(sys.modules, name, None)
    path = write(tmp_path / "model.joblib", b"\x04\x22\x4d\x18" + bytes(32))

    with pytest.raises(PickleInspectionError, match="install the lz4 package"):
        inspect_pickle(path)


def test_lz4_files_are_inspected_and_flagged_for_the_container(
    fitted: dict[str, BaseEstimator], tmp_path: Path
) -> None:
    """An lz4 model is inspected, and flagged because the container does not pin lz4."""
    path = tmp_path / "model.joblib"
    joblib.dump(fitted["linear"], path, compress="lz4")

    report = inspect_pickle(path)
    errors, _ = check_compatibility(report, FRAMEWORK_1_4)

    assert report.compression == "lz4"
    assert report.refused == ()
    assert any("lz4" in e for e in errors)


def test_a_corrupt_lz4_file_is_a_clear_error(
    fitted: dict[str, BaseEstimator], tmp_path: Path
) -> None:
    """lz4 reports a damaged frame as a RuntimeError; the inspector says "corrupt" instead."""
    path = tmp_path / "model.joblib"
    joblib.dump(fitted["linear"], path, compress="lz4")
    data = bytearray(path.read_bytes())
    data[4] ^= 0xFF  # the frame descriptor's flags: lz4 refuses the header
    path.write_bytes(bytes(data))

    with pytest.raises(PickleInspectionError, match="corrupt"):
        inspect_pickle(path)


# ------------------------------------------------------------------------------------------
# garbage in: a clear PickleInspectionError, never anything else


@pytest.mark.parametrize("case", list(NOT_PICKLES))
def test_files_that_are_not_pickles_raise_a_clear_error(tmp_path: Path, case: str) -> None:
    """Empty, text, .npy, old joblib, corrupt archives and broken pickles say what is wrong."""
    data, expected = NOT_PICKLES[case]
    path = write(tmp_path / "model.joblib", data)

    with pytest.raises(PickleInspectionError, match=expected) as raised:
        inspect_pickle(path)
    assert str(path) in str(raised.value)


def test_zip_archives_are_recognised(tmp_path: Path) -> None:
    """A zip archive (.npz, skops) is named as such instead of being walked as a pickle."""
    path = tmp_path / "model.skops"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("schema.json", "{}")

    with pytest.raises(PickleInspectionError, match="zip archive"):
        inspect_pickle(path)


def test_a_missing_file_raises_a_clear_error(tmp_path: Path) -> None:
    """A path that does not exist is a PickleInspectionError naming the path."""
    with pytest.raises(PickleInspectionError, match="cannot read"):
        inspect_pickle(tmp_path / "absent.joblib")


def test_every_truncation_of_an_uncompressed_model_is_an_error(
    small_model_bytes: dict[str, bytes], tmp_path: Path
) -> None:
    """Cutting the file anywhere before its last byte raises PickleInspectionError."""
    data = small_model_bytes["none"]
    path = tmp_path / "cut.joblib"
    for size in range(1, len(data)):
        path.write_bytes(data[:size])
        with pytest.raises(PickleInspectionError):
            inspect_pickle(path)


def test_every_truncation_of_a_compressed_model_is_an_error_or_complete(
    small_model_bytes: dict[str, bytes], tmp_path: Path
) -> None:
    """A cut zlib file raises, unless only the checksum is lost and the pickle is whole."""
    data = small_model_bytes["zlib"]
    path = write(tmp_path / "whole.joblib", data)
    whole = inspect_pickle(path)
    for size in range(1, len(data)):
        path.write_bytes(data[:size])
        with contextlib.suppress(PickleInspectionError):
            assert inspect_pickle(path) == whole


@pytest.mark.parametrize("seed", range(20))
def test_random_bytes_raise_a_clear_error(tmp_path: Path, seed: int) -> None:
    """Random data is reported as unreadable, never as some other exception."""
    path = write(tmp_path / "random.joblib", np.random.default_rng(seed).bytes(4096))

    with pytest.raises(PickleInspectionError):
        inspect_pickle(path)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    variant=st.sampled_from(["none", "zlib"]),
    position=st.floats(min_value=0, max_value=1, exclude_max=True),
    replacement=st.binary(min_size=0, max_size=8),
    removed=st.integers(min_value=0, max_value=8),
)
def test_mutated_model_files_give_a_report_or_a_clear_error(
    small_model_bytes: dict[str, bytes],
    tmp_path_factory: pytest.TempPathFactory,
    variant: str,
    position: float,
    replacement: bytes,
    removed: int,
) -> None:
    """Any byte-level corruption of a model yields a report or PickleInspectionError only."""
    data = small_model_bytes[variant]
    at = int(position * len(data))
    path = tmp_path_factory.getbasetemp() / "mutated.joblib"
    path.write_bytes(data[:at] + replacement + data[at + removed :])

    with contextlib.suppress(PickleInspectionError):
        assert isinstance(inspect_pickle(path), PickleReport)
