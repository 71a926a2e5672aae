"""Pickle inspection of exploit payloads: refused by name, explained, and never run."""

from __future__ import annotations

import importlib
import os
import pickle
import shlex
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import make_pipeline

from skdeploy.core.pickle.inspect import (
    PickleReport,
    inspect_pickle,
)
from tests.pickle_models import (
    call_pickle,
    fit_models,
    unicode_opcode,
    write,
)


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


def _refused_names(report: PickleReport) -> set[str]:
    return {message.split(":", 1)[0] for message in report.refused}


@pytest.fixture(scope="module")
def fitted() -> dict[str, BaseEstimator]:
    return fit_models()


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
        write(path, pickle.dumps(payload, protocol=4))
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
        + unicode_opcode("os")
        + b"tR"
        + unicode_opcode("system")
        + b"tR("
        + unicode_opcode(f"touch {shlex.quote(str(marker))}")
        + b"tR."
    )
    path = write(tmp_path / "chain.pkl", data)

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
    path = write(tmp_path / "p.pkl", call_pickle(module, name, protocol=protocol))

    report = inspect_pickle(path)

    assert _refused_names(report) == {f"{module}.{name}"}
    assert (module, name) in report.globals


@pytest.mark.parametrize(("module", "name", "reason"), REFUSAL_REASONS)
def test_refusals_explain_why(tmp_path: Path, module: str, name: str, reason: str) -> None:
    """Each refusal message names the global and gives the reason it is refused."""
    path = write(tmp_path / "p.pkl", call_pickle(module, name))

    (message,) = inspect_pickle(path).refused

    assert message.startswith(f"{module}.{name}: ")
    assert reason in message


@pytest.mark.parametrize("protocol", [2, 4])
@pytest.mark.parametrize(("module", "name"), ALLOWED_GLOBALS)
def test_globals_models_need_are_allowed(
    tmp_path: Path, module: str, name: str, protocol: int
) -> None:
    """Builtins, copyreg helpers, numpy, scipy, pandas and sklearn names used by models pass."""
    path = write(tmp_path / "p.pkl", call_pickle(module, name, protocol=protocol))

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
    path = write(tmp_path / "p.pkl", call_pickle(*python2, protocol=2))

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
    path = write(tmp_path / "u.pkl", call_pickle("numpy.core", "_ufunc_reconstruct", target, 2))

    report = inspect_pickle(path)

    assert report.globals == (("numpy.core", "_ufunc_reconstruct"), target)
    assert (f"{target[0]}.{target[1]}" in _refused_names(report)) is refused


@pytest.mark.parametrize("case", list(STRUCTURAL_REFUSALS))
def test_constructs_the_container_cannot_load_are_refused(tmp_path: Path, case: str) -> None:
    """Persistent ids, extension codes and writes into modules are refused, naming what."""
    data, expected = STRUCTURAL_REFUSALS[case]
    report = inspect_pickle(write(tmp_path / "p.pkl", data))

    assert any(expected in message for message in report.refused), report.refused


def test_out_of_band_buffers_are_refused(tmp_path: Path) -> None:
    """A protocol-5 pickle written with a buffer_callback cannot be loaded from a file."""
    data = pickle.dumps(pickle.PickleBuffer(b"abc"), protocol=5, buffer_callback=lambda _: False)

    report = inspect_pickle(write(tmp_path / "p.pkl", data))

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
    path = write(tmp_path / "p.pkl", call_pickle(module, "Thing"))

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
        path = write(tmp_path / "p.pkl", call_pickle(module, name))
        report = inspect_pickle(path, trusted={module: {name}})
        assert _refused_names(report) == {f"{module}.{name}"}


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
