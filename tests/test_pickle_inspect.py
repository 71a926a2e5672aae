"""Pickle inspection: real joblib model files, real exploit payloads, garbage, never executed."""

from __future__ import annotations

import collections
import contextlib
import importlib
import os
import pickle
import shlex
import subprocess
import sys
import time
import uuid
import warnings
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
import sklearn
import sklearn.metrics
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skdeploy.core.frameworks import get_framework
from skdeploy.core.pickle.inspect import (
    InspectionLimits,
    PickleInspectionError,
    PickleReport,
    check_compatibility,
    inspect_pickle,
)

FRAMEWORK_1_2 = get_framework("1.2-1")
FRAMEWORK_1_4 = get_framework("1.4-2")

MODELS: dict[str, Callable[[np.ndarray, np.ndarray], BaseEstimator]] = {
    "linear": lambda X, y: LinearRegression().fit(X, y),
    "pipeline": lambda X, y: make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y),
    "forest": lambda X, y: RandomForestClassifier(n_estimators=5, random_state=0).fit(X, y),
}

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


def _touch_payloads(marker: Path) -> dict[str, tuple[Callable[..., Any], tuple[Any, ...]]]:
    """``(callable, args)`` pairs that create ``marker`` when an unpickler calls them."""
    return {
        "posix.system": (os.system, (f"touch {shlex.quote(str(marker))}",)),
        "subprocess.Popen": (subprocess.Popen, (["touch", str(marker)],)),
        "subprocess.check_call": (subprocess.check_call, (["touch", str(marker)],)),
        "builtins.eval": (eval, (f"__import__('pathlib').Path({str(marker)!r}).touch()",)),
        "builtins.exec": (exec, (f"import pathlib; pathlib.Path({str(marker)!r}).touch()",)),
    }


GADGET_NAMES = list(_touch_payloads(Path("x")))

#: Globals refused by name: classic gadgets, and known entry points inside allowed libraries.
REFUSED_GLOBALS = [
    ("posix", "system"),
    ("os", "popen"),
    ("nt", "system"),
    ("subprocess", "check_output"),
    ("builtins", "eval"),
    ("builtins", "exec"),
    ("builtins", "compile"),
    ("builtins", "getattr"),
    ("builtins", "__import__"),
    ("builtins", "open"),
    ("importlib", "import_module"),
    ("operator", "attrgetter"),
    ("pickle", "loads"),
    ("marshal", "loads"),
    ("types", "FunctionType"),
    ("ctypes", "CDLL"),
    ("socket", "socket"),
    ("sys", "modules"),
    ("runpy", "run_path"),
    ("joblib", "load"),
    ("joblib.externals.cloudpickle.cloudpickle", "subimport"),
    ("numpy", "load"),
    ("numpy.lib.npyio", "load"),
    ("numpy", "memmap"),
    ("numpy.testing._private.utils", "runstring"),
    ("numpy.f2py", "compile"),
    ("numpy.lib.stride_tricks", "as_strided"),
    ("numpy.ctypeslib", "as_array"),
    ("sklearn.utils._testing", "assert_run_python_script_without_output"),
    ("sklearn.datasets", "fetch_openml"),
    ("scipy.io", "loadmat"),
    ("scipy._lib._ccallback", "LowLevelCallable"),
    ("pandas", "eval"),
    ("pandas", "read_pickle"),
    ("pandas.io.pickle", "read_pickle"),
    ("pandas.compat._optional", "import_optional_dependency"),
    ("a_package_nobody_ships", "Thing"),
    ("sklearn.base", "clone.__globals__"),
    ("sklearn.base", "BaseEstimator.__init__"),
    ("numpy", "__builtins__"),
]

#: A refusal says why: (module, name, words the message must contain).
REFUSAL_REASONS = [
    ("__main__", "MyTransformer", "training script"),
    ("numpy", "ndarray.tofile", "attribute path"),
    ("numpy", "__builtins__", "special attribute"),
    ("posix", "system", "shell commands"),
    ("builtins", "getattr", "any attribute"),
    ("numpy", "load", "files"),
    ("sklearn.utils._testing", "assert_run_python_script_without_output", "runs code"),
    ("a_package_nobody_ships", "Thing", "not on the allow-list"),
    ("joblib.numpy_pickle", "NDArrayWrapper", "joblib < 0.10"),
]

#: Globals real models need; none may be refused.
ALLOWED_GLOBALS = [
    ("builtins", "set"),
    ("builtins", "slice"),
    ("builtins", "complex"),
    ("builtins", "object"),
    ("copyreg", "_reconstructor"),
    ("copyreg", "__newobj__"),
    ("collections", "OrderedDict"),
    ("_codecs", "encode"),
    ("functools", "partial"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.random._pickle", "__randomstate_ctor"),
    ("scipy.sparse._csr", "csr_matrix"),
    ("pandas.core.frame", "DataFrame"),
    ("sklearn.linear_model._base", "LinearRegression"),
]

#: Hand-written pickles with a construct the container cannot or must not load.
STRUCTURAL_REFUSALS: dict[str, tuple[bytes, str]] = {
    "persistent id": (b"\x80\x02X\x01\x00\x00\x00aQ.", "persistent id"),
    "extension code": (b"\x80\x02\x82\x01.", "extension code 1"),
    "BUILD on a module": (b"\x80\x02csklearn\nbase\n}b.", "sklearn.base: BUILD"),
    "SETITEM on a module dict": (
        b"\x80\x02cnumpy\nsctypeDict\nX\x01\x00\x00\x00aNs.",
        "numpy.sctypeDict: SETITEM",
    ),
    "ufunc import with computed args": (
        b"\x80\x02cnumpy.core\n_ufunc_reconstruct\n)R.",
        "numpy.core._ufunc_reconstruct: called with computed arguments",
    ),
}

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


# ------------------------------------------------------------------------------------------
# helpers


class _Payload:
    """An object that pickles as ``func(*args)``: what an attacker's file contains."""

    def __init__(self, func: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self.func, self.args = func, args

    def __reduce__(self) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        return self.func, self.args


def _wait_for_processes(loaded: object) -> None:
    """Let a Popen that a control load started finish, wherever it sits in the result."""
    if isinstance(loaded, subprocess.Popen):
        loaded.wait()
    elif isinstance(loaded, dict):
        for value in loaded.values():
            _wait_for_processes(value)
    elif isinstance(loaded, (list, tuple, np.ndarray)):
        for value in loaded:
            _wait_for_processes(value)


def _unicode(text: str) -> bytes:
    data = text.encode()
    return pickle.BINUNICODE + len(data).to_bytes(4, "little") + data


def _global(module: str, name: str, protocol: int) -> bytes:
    if protocol >= 4:
        return _unicode(module) + _unicode(name) + pickle.STACK_GLOBAL
    return pickle.GLOBAL + f"{module}\n{name}\n".encode()


def _call_pickle(module: str, name: str, args: tuple[str, ...] = (), protocol: int = 4) -> bytes:
    """A hand-written pickle that imports ``module.name`` and calls it with string args."""
    return (
        pickle.PROTO
        + bytes([protocol])
        + _global(module, name, protocol)
        + pickle.MARK
        + b"".join(_unicode(arg) for arg in args)
        + pickle.TUPLE
        + pickle.REDUCE
        + pickle.STOP
    )


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _refused_names(report: PickleReport) -> set[str]:
    return {message.split(":", 1)[0] for message in report.refused}


@pytest.fixture(scope="module")
def fitted() -> dict[str, BaseEstimator]:
    rng = np.random.RandomState(0)
    X = rng.rand(60, 4)
    y = (X[:, 0] + X[:, 1] > 1).astype(int)
    return {name: build(X, y) for name, build in MODELS.items()}


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
    path = _write(tmp_path / "model.pkl", pickle.dumps(fitted["forest"], protocol=protocol))

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
# payloads: refused by name, and never run


@pytest.mark.parametrize("embedding", ["pickle", "joblib-after-arrays", "joblib-object-array"])
@pytest.mark.parametrize("gadget", GADGET_NAMES)
def test_exploit_payloads_are_refused_by_name_and_never_run(
    fitted: dict[str, BaseEstimator], tmp_path: Path, gadget: str, embedding: str
) -> None:
    """A file whose unpickling would create a marker is refused by name; the marker never shows."""
    marker = tmp_path / "pwned"
    payload = _Payload(*_touch_payloads(marker)[gadget])
    path = tmp_path / "model.joblib"
    if embedding == "pickle":
        _write(path, pickle.dumps(payload, protocol=4))
    elif embedding == "joblib-after-arrays":
        joblib.dump({"model": fitted["forest"], "payload": payload}, path)
    else:
        joblib.dump({"model": fitted["linear"], "cells": np.array([payload], dtype=object)}, path)

    report = inspect_pickle(path)

    assert gadget in _refused_names(report)
    assert not marker.exists()
    # Control: the same file really runs the payload when loaded, so the check above is meaningful.
    _wait_for_processes(joblib.load(path))
    assert marker.exists()


def test_a_getattr_import_chain_is_refused_and_never_run(tmp_path: Path) -> None:
    """getattr(__import__('os'), 'system')(...) is refused at both names and does not run."""
    marker = tmp_path / "pwned"
    data = (
        b"\x80\x02cbuiltins\ngetattr\n(cbuiltins\n__import__\n("
        + _unicode("os")
        + b"tR"
        + _unicode("system")
        + b"tR("
        + _unicode(f"touch {shlex.quote(str(marker))}")
        + b"tR."
    )
    path = _write(tmp_path / "chain.pkl", data)

    report = inspect_pickle(path)

    assert {"builtins.getattr", "builtins.__import__"} <= _refused_names(report)
    assert not marker.exists()
    pickle.loads(data)
    assert marker.exists()


@pytest.mark.parametrize("protocol", [2, 4])
@pytest.mark.parametrize(("module", "name"), REFUSED_GLOBALS)
def test_dangerous_and_unknown_globals_are_refused_by_name(
    tmp_path: Path, module: str, name: str, protocol: int
) -> None:
    """Each gadget, deny-listed entry point or unknown module is refused with its name."""
    path = _write(tmp_path / "p.pkl", _call_pickle(module, name, protocol=protocol))

    report = inspect_pickle(path)

    assert _refused_names(report) == {f"{module}.{name}"}
    assert (module, name) in report.globals


@pytest.mark.parametrize(("module", "name", "reason"), REFUSAL_REASONS)
def test_refusals_explain_why(tmp_path: Path, module: str, name: str, reason: str) -> None:
    """Each refusal message names the global and gives the reason it is refused."""
    path = _write(tmp_path / "p.pkl", _call_pickle(module, name))

    (message,) = inspect_pickle(path).refused

    assert message.startswith(f"{module}.{name}: ")
    assert reason in message


@pytest.mark.parametrize("protocol", [2, 4])
@pytest.mark.parametrize(("module", "name"), ALLOWED_GLOBALS)
def test_globals_models_need_are_allowed(
    tmp_path: Path, module: str, name: str, protocol: int
) -> None:
    """Builtins, copyreg helpers, numpy, scipy, pandas and sklearn names used by models pass."""
    path = _write(tmp_path / "p.pkl", _call_pickle(module, name, protocol=protocol))

    report = inspect_pickle(path)

    assert report.refused == ()
    assert report.globals == ((module, name),)


@pytest.mark.parametrize(
    ("python2", "python3", "refused"),
    [
        (("__builtin__", "set"), ("builtins", "set"), False),
        (("copy_reg", "_reconstructor"), ("copyreg", "_reconstructor"), False),
        (("__builtin__", "eval"), ("builtins", "eval"), True),
        (("__builtin__", "xrange"), ("builtins", "range"), False),
    ],
)
def test_python2_names_are_checked_as_the_unpickler_renames_them(
    tmp_path: Path, python2: tuple[str, str], python3: tuple[str, str], refused: bool
) -> None:
    """Protocols < 3 spell builtins as __builtin__; the check sees the name actually imported."""
    path = _write(tmp_path / "p.pkl", _call_pickle(*python2, protocol=2))

    report = inspect_pickle(path)

    assert report.globals == (python3,)
    assert bool(report.refused) is refused


@pytest.mark.parametrize(
    ("target", "refused"), [(("numpy", "log1p"), False), (("os", "system"), True)]
)
def test_numpy_ufunc_reconstruct_is_checked_as_the_import_it_performs(
    tmp_path: Path, target: tuple[str, str], refused: bool
) -> None:
    """numpy 1's _ufunc_reconstruct(module, name) imports by string: that import is checked."""
    path = _write(tmp_path / "u.pkl", _call_pickle("numpy.core", "_ufunc_reconstruct", target, 2))

    report = inspect_pickle(path)

    assert report.globals == (("numpy.core", "_ufunc_reconstruct"), target)
    assert (f"{target[0]}.{target[1]}" in _refused_names(report)) is refused


@pytest.mark.parametrize("case", list(STRUCTURAL_REFUSALS))
def test_constructs_the_container_cannot_load_are_refused(tmp_path: Path, case: str) -> None:
    """Persistent ids, extension codes and writes into modules are refused, naming what."""
    data, expected = STRUCTURAL_REFUSALS[case]
    report = inspect_pickle(_write(tmp_path / "p.pkl", data))

    assert any(expected in message for message in report.refused), report.refused


def test_out_of_band_buffers_are_refused(tmp_path: Path) -> None:
    """A protocol-5 pickle written with a buffer_callback cannot be loaded from a file."""
    data = pickle.dumps(pickle.PickleBuffer(b"abc"), protocol=5, buffer_callback=lambda _: False)

    report = inspect_pickle(_write(tmp_path / "p.pkl", data))

    assert any("out-of-band buffer" in message for message in report.refused)


def test_classes_from_main_are_refused_with_the_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A transformer defined in the training script (__main__) is refused with an explanation."""

    class MainScaler(TransformerMixin, BaseEstimator):
        def fit(self, X: Any, y: Any = None) -> MainScaler:
            return self

        def transform(self, X: Any) -> Any:
            return X

    MainScaler.__module__ = "__main__"
    MainScaler.__qualname__ = "MainScaler"
    monkeypatch.setattr(sys.modules["__main__"], "MainScaler", MainScaler, raising=False)
    pipeline = make_pipeline(MainScaler(), LinearRegression()).fit([[0.0], [1.0]], [0.0, 1.0])
    path = tmp_path / "model.joblib"
    joblib.dump(pipeline, path)

    report = inspect_pickle(path)

    (message,) = report.refused
    assert message.startswith("__main__.MainScaler:")
    assert "training script" in message
    assert "importable module" in message


def test_allowed_user_modules_are_still_never_imported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A trusted class of a shipped module passes; inspection still never imports it."""
    module = f"skdeploy_canary_{uuid.uuid4().hex}"
    marker = tmp_path / "imported"
    (tmp_path / f"{module}.py").write_text(
        f"import pathlib\npathlib.Path({str(marker)!r}).touch()\nclass Thing:\n    pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    path = _write(tmp_path / "p.pkl", _call_pickle(module, "Thing"))

    refused = inspect_pickle(path)
    allowed = inspect_pickle(path, trusted={module: {"Thing"}})

    assert _refused_names(refused) == {f"{module}.Thing"}
    assert allowed.refused == ()
    assert not marker.exists()
    assert module not in sys.modules
    try:  # Control: importing the module does leave the marker.
        importlib.import_module(module)
        assert marker.exists()
    finally:
        sys.modules.pop(module, None)


def test_trusted_modules_cannot_unlock_known_gadgets(tmp_path: Path) -> None:
    """Trusting 'os' or 'builtins' (even naming the gadget) still refuses os.system and eval."""
    for module, name in (("os", "system"), ("builtins", "eval")):
        path = _write(tmp_path / "p.pkl", _call_pickle(module, name))
        report = inspect_pickle(path, trusted={module: {name}})
        assert _refused_names(report) == {f"{module}.{name}"}


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
    path = _write(tmp_path / "p.pkl", _call_pickle("posix", "system", ("true",)))

    errors, _ = check_compatibility(inspect_pickle(path), FRAMEWORK_1_4)

    assert any(e.startswith("posix.system:") for e in errors)


def test_missing_version_is_a_warning(tmp_path: Path) -> None:
    """scikit-learn names without a recorded version (e.g. a bare function) give a warning."""
    path = _write(tmp_path / "p.pkl", pickle.dumps(sklearn.metrics.accuracy_score, protocol=4))

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


# ------------------------------------------------------------------------------------------
# compression limits and lz4


def test_decompression_stops_at_max_bytes(tmp_path: Path) -> None:
    """A zip bomb (a 1 TiB BINBYTES8 of zeros, 64 MiB shown) is refused at the cap."""
    compressor = zlib.compressobj(9)
    parts = [compressor.compress(b"\x80\x04\x8e" + (1 << 40).to_bytes(8, "little"))]
    zeros = bytes(1 << 20)
    parts += [compressor.compress(zeros) for _ in range(64)]
    path = _write(tmp_path / "bomb.joblib", b"".join(parts) + compressor.flush())
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
    path = _write(tmp_path / "model.joblib", b"\x04\x22\x4d\x18" + bytes(32))

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
    path = _write(tmp_path / "model.joblib", data)

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
    path = _write(tmp_path / "whole.joblib", data)
    whole = inspect_pickle(path)
    for size in range(1, len(data)):
        path.write_bytes(data[:size])
        with contextlib.suppress(PickleInspectionError):
            assert inspect_pickle(path) == whole


@pytest.mark.parametrize("seed", range(20))
def test_random_bytes_raise_a_clear_error(tmp_path: Path, seed: int) -> None:
    """Random data is reported as unreadable, never as some other exception."""
    path = _write(tmp_path / "random.joblib", np.random.default_rng(seed).bytes(4096))

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


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("numpy", "lookfor"),
        ("numpy.lib.utils", "lookfor"),
        ("numpy.compat", "npy_load_module"),
        ("numpy.compat.py3k", "open_latin1"),
    ],
)
def test_numpy_entry_points_that_import_or_open_by_string_are_refused(
    tmp_path: Path, module: str, name: str
) -> None:
    """numpy.lookfor imports, numpy.compat loads source and truncates files: refused by name."""
    path = tmp_path / "gadget.pkl"
    path.write_bytes(
        b"\x80\x02c" + module.encode() + b"\n" + name.encode() + b"\nX\x01\x00\x00\x00xX\x0b"
        b"\x00\x00\x00antigravity\x86R."
    )
    report = inspect_pickle(path)
    assert any(f"{module}.{name}" in message for message in report.refused), report.refused
