"""Pickle inspection of real joblib model files: what they import, which framework loads them."""

from __future__ import annotations

import collections
import pickle
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
import sklearn
import sklearn.metrics
from sklearn.base import BaseEstimator
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skdeploy.core.frameworks import get_framework
from skdeploy.core.pickle.inspect import (
    check_compatibility,
    inspect_pickle,
)
from tests.pickle_models import (
    FRAMEWORK_1_2,
    FRAMEWORK_1_4,
    MODELS,
    call_pickle,
    fit_models,
    write,
)

#: joblib's ``compress`` argument -> the compression the report must name.
COMPRESSIONS: dict[str, tuple[Any, str | None]] = {
    "none": (0, None),
    "zlib": (("zlib", 3), "zlib"),
    "gzip": ("gzip", "gzip"),
    "bz2": ("bz2", "bz2"),
    "lzma": ("lzma", "lzma"),
    "xz": ("xz", "xz"),
}

PROTOCOLS = [0, 1, 2, 3, 4, 5]

#: Arrays whose raw bytes joblib writes inline; each dtype's size is worked out differently.
ARRAYS: dict[str, Callable[[], np.ndarray]] = {
    "float64": lambda: np.arange(5.0),
    "big-endian": lambda: np.arange(5.0, dtype=">f8"),
    "fortran-order": lambda: np.asfortranarray(np.arange(12.0).reshape(3, 4)),
    "float16": lambda: np.ones(3, dtype="f2"),
    "complex128": lambda: np.ones(3, dtype="c16"),
    "bool": lambda: np.ones(3, dtype=bool),
    "unicode": lambda: np.array(["a", "bcdefg"]),
    "bytes": lambda: np.array([b"ab", b"c"]),
    "datetime": lambda: np.arange(3).astype("M8[ns]"),
    "timedelta": lambda: np.arange(3).astype("m8[s]"),
    "structured": lambda: np.zeros(3, dtype=[("a", "<i8"), ("b", "<f4")]),
    "subarray": lambda: np.zeros(2, dtype=("f8", (2, 3))),
    "void": lambda: np.zeros(2, dtype="V7"),
    "zero-d": lambda: np.array(3.5),
    "empty": lambda: np.zeros((0, 3)),
    "object": lambda: np.array(["x", 1, None], dtype=object),
    "structured-with-object": lambda: np.array([(1, 2.0)], dtype=[("a", "O"), ("b", "<f4")]),
}


@pytest.fixture(scope="module")
def fitted() -> dict[str, BaseEstimator]:
    return fit_models()


# ------------------------------------------------------------------------------------------
# real models


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("compression", list(COMPRESSIONS))
@pytest.mark.parametrize("model_name", list(MODELS))
def test_real_models_pass_and_report_their_scikit_learn_version(
    fitted: dict[str, BaseEstimator],
    tmp_path: Path,
    model_name: str,
    compression: str,
    protocol: int,
) -> None:
    """A real model dumped by joblib, any compressor and protocol, passes the allow-list."""
    model = fitted[model_name]
    compress, expected_compression = COMPRESSIONS[compression]
    path = tmp_path / "model.joblib"
    joblib.dump(model, path, compress=compress, protocol=protocol)

    report = inspect_pickle(path)

    assert report.refused == ()
    assert report.sklearn_versions == (sklearn.__version__,)
    assert (type(model).__module__, type(model).__name__) in report.globals
    assert report.compression == expected_compression
    assert report.protocol == protocol


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_plain_pickle_files_are_inspected_too(
    fitted: dict[str, BaseEstimator], tmp_path: Path, protocol: int
) -> None:
    """A model written by pickle.dump (arrays inline, no joblib wrapper) passes as well."""
    path = write(tmp_path / "model.pkl", pickle.dumps(fitted["forest"], protocol=protocol))

    report = inspect_pickle(path)

    assert report.refused == ()
    assert report.sklearn_versions == (sklearn.__version__,)
    assert ("sklearn.ensemble._forest", "RandomForestClassifier") in report.globals


@pytest.mark.parametrize("compress", [0, ("zlib", 3)])
@pytest.mark.parametrize("array_name", list(ARRAYS))
def test_walk_resumes_after_joblib_array_data_of_every_dtype(
    tmp_path: Path, array_name: str, compress: Any
) -> None:
    """The raw bytes joblib writes after each array are skipped exactly, whatever the dtype."""
    path = tmp_path / "arrays.joblib"
    joblib.dump({"array": ARRAYS[array_name](), "after": collections.OrderedDict()}, path, compress)

    report = inspect_pickle(path)

    assert report.globals[-1] == ("collections", "OrderedDict")
    assert report.refused == ()


def test_a_large_array_is_skipped_not_parsed(tmp_path: Path) -> None:
    """Megabytes of array data are skipped quickly and the estimator after them is still seen."""
    scaler = StandardScaler().fit(np.arange(2_000_000.0).reshape(2, -1))
    path = tmp_path / "big.joblib"
    joblib.dump([scaler, LinearRegression()], path)
    assert path.stat().st_size > 3 * 8 * 1_000_000

    started = time.perf_counter()
    report = inspect_pickle(path)
    elapsed = time.perf_counter() - started

    assert report.globals[-1] == ("sklearn.linear_model._base", "LinearRegression")
    assert report.refused == ()
    assert elapsed < 5


def test_a_model_fitted_on_a_dataframe_is_walked_through_its_object_arrays(
    tmp_path: Path,
) -> None:
    """feature_names_in_ is an object array, which joblib writes as a nested pickle stream."""
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0], "b": [1.0, 0.0, 1.0, 0.0]})
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(frame, [0, 1, 0, 1])
    assert model.feature_names_in_.dtype == object
    path = tmp_path / "model.joblib"
    joblib.dump(model, path)

    report = inspect_pickle(path)

    assert report.refused == ()
    assert report.sklearn_versions == (sklearn.__version__,)
    assert any(
        module.startswith("numpy") and name == "_reconstruct" for module, name in report.globals
    )


# ------------------------------------------------------------------------------------------
# versions and compatibility


def test_version_mismatch_is_an_error_naming_both_versions(
    fitted: dict[str, BaseEstimator], tmp_path: Path
) -> None:
    """A model saved by this scikit-learn is refused for the 1.2-1 framework, naming both."""
    path = tmp_path / "model.joblib"
    joblib.dump(fitted["pipeline"], path)

    errors, warnings_ = check_compatibility(inspect_pickle(path), FRAMEWORK_1_2)

    (message,) = [e for e in errors if "scikit-learn" in e]
    assert sklearn.__version__ in message
    assert "1.2.1" in message
    assert "1.2-1" in message
    assert not any("scikit-learn" in w for w in warnings_)


def test_allow_version_skew_turns_the_mismatch_into_a_warning(
    fitted: dict[str, BaseEstimator], tmp_path: Path
) -> None:
    """With allow_version_skew the version mismatch is reported as a warning, not an error."""
    path = tmp_path / "model.joblib"
    joblib.dump(fitted["pipeline"], path)

    errors, warnings_ = check_compatibility(
        inspect_pickle(path), FRAMEWORK_1_2, allow_version_skew=True
    )

    assert not any("scikit-learn" in e for e in errors)
    assert any(sklearn.__version__ in w and "1.2.1" in w for w in warnings_)


@pytest.mark.parametrize(
    ("recorded", "framework_version", "suggested"),
    [("1.2.1", "1.2-1", None), ("1.2.0", "1.2-1", None), ("1.4.2", "1.2-1", "1.4-2")],
)
def test_recorded_version_is_compared_by_major_minor(
    fitted: dict[str, BaseEstimator],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    recorded: str,
    framework_version: str,
    suggested: str | None,
) -> None:
    """The version recorded at pickling time matches on major.minor; a mismatch names a fit."""
    monkeypatch.setattr("sklearn.base.__version__", recorded)
    path = tmp_path / "model.joblib"
    joblib.dump(fitted["linear"], path)
    monkeypatch.undo()

    report = inspect_pickle(path)
    errors, _ = check_compatibility(report, get_framework(framework_version))

    assert report.sklearn_versions == (recorded,)
    version_errors = [e for e in errors if "scikit-learn" in e]
    if suggested is None:
        assert version_errors == []
    else:
        (message,) = version_errors
        assert f"use framework {suggested}" in message


def test_a_matching_model_has_no_problems_on_a_numpy2_framework(
    fitted: dict[str, BaseEstimator], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Recorded 1.4.x on framework 1.4-2 (numpy 2): no errors and no warnings."""
    monkeypatch.setattr("sklearn.base.__version__", "1.4.2")
    path = tmp_path / "model.joblib"
    joblib.dump(fitted["forest"], path, compress=3)
    monkeypatch.undo()

    assert check_compatibility(inspect_pickle(path), FRAMEWORK_1_4) == ((), ())


def test_numpy2_pickles_are_refused_for_a_numpy1_framework(
    fitted: dict[str, BaseEstimator], tmp_path: Path
) -> None:
    """numpy 2 writes numpy._core, which the 1.2-1 container (numpy 1.24) cannot import."""
    path = tmp_path / "model.joblib"
    joblib.dump(fitted["linear"], path)
    report = inspect_pickle(path)

    old_errors, _ = check_compatibility(report, FRAMEWORK_1_2)
    new_errors, _ = check_compatibility(report, FRAMEWORK_1_4)

    assert report.uses_numpy_core
    assert any("numpy._core" in e and "1.24.1" in e for e in old_errors)
    assert not any("numpy._core" in e for e in new_errors)


def test_numpy1_pickles_are_not_flagged(fitted: dict[str, BaseEstimator], tmp_path: Path) -> None:
    """A pickle naming numpy.core (as numpy 1 writes it) loads on numpy 1 and is not flagged."""
    path = tmp_path / "model.joblib"
    joblib.dump(fitted["linear"], path, protocol=2)
    data = path.read_bytes()
    assert b"numpy._core" in data
    path.write_bytes(data.replace(b"numpy._core", b"numpy.core"))
    with warnings.catch_warnings():  # numpy 2 warns that numpy.core is deprecated
        warnings.simplefilter("ignore")
        joblib.load(path)  # still a valid joblib file

    report = inspect_pickle(path)
    errors, _ = check_compatibility(report, FRAMEWORK_1_2)

    assert not report.uses_numpy_core
    assert ("numpy.core.multiarray", "scalar") in report.globals
    assert not any("numpy._core" in e for e in errors)


def test_refused_globals_are_compatibility_errors(tmp_path: Path) -> None:
    """Every refusal in the report is an error for any framework."""
    path = write(tmp_path / "p.pkl", call_pickle("posix", "system", ("true",)))

    errors, _ = check_compatibility(inspect_pickle(path), FRAMEWORK_1_4)

    assert any(e.startswith("posix.system:") for e in errors)


def test_missing_version_is_a_warning(tmp_path: Path) -> None:
    """scikit-learn names without a recorded version (e.g. a bare function) give a warning."""
    path = write(tmp_path / "p.pkl", pickle.dumps(sklearn.metrics.accuracy_score, protocol=4))

    errors, warnings_ = check_compatibility(inspect_pickle(path), FRAMEWORK_1_4)

    assert errors == ()
    assert any("no scikit-learn version" in w for w in warnings_)


def test_pandas_objects_are_a_warning_naming_the_container_pandas(
    fitted: dict[str, BaseEstimator], tmp_path: Path
) -> None:
    """A model that keeps a DataFrame warns that pandas pickles are version-specific."""
    pd = pytest.importorskip("pandas")
    path = tmp_path / "model.joblib"
    joblib.dump({"model": fitted["linear"], "frame": pd.DataFrame({"a": [1, 2]})}, path)

    _, warnings_ = check_compatibility(inspect_pickle(path), FRAMEWORK_1_2)

    assert any("pandas" in w and "1.1.3" in w for w in warnings_)
