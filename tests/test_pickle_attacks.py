"""The inspector against an attacker: disagreements with joblib's loader, and unbounded work.

Each attack file in ``tests/pickle_attacks.py`` is first loaded by the real ``joblib.load`` in a
sandboxed subprocess (``tests/sandbox_load.py``) to prove it is a working exploit there (the
hidden ``os.system`` call is attempted, and blocked by the audit hook), then it must be refused
by the inspector. The limits tests check that every bound refuses with a message naming the
``skdeploy:pickleLimits`` key that raises it, and that no input ends in a traceback.
"""

from __future__ import annotations

import json
import subprocess
import sys
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from skdeploy.core.pickle.inspect import (
    InspectionLimits,
    PickleInspectionError,
    PickleLimitExceeded,
    inspect_pickle,
)
from skdeploy.core.settings import load_stack_settings
from skdeploy.tooling.local import ServeError, refuse_unsafe_pickles
from tests import pickle_attacks as atk
from tests.support import REPO, copy_project

SANDBOX = REPO / "tests" / "sandbox_load.py"


def sandbox_load(paths: list[Path]) -> list[dict[str, Any]]:
    """What the real joblib.load did with each file, under the audit hooks."""
    result = subprocess.run(
        [sys.executable, str(SANDBOX), *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    return [json.loads(line) for line in result.stdout.splitlines()]


def refusal(path: Path, limits: InspectionLimits | None = None) -> str | None:
    """The inspector's refusal of ``path`` as text, or None when it passes the file."""
    try:
        report = inspect_pickle(path, limits=limits)
    except PickleInspectionError as exc:
        return str(exc)
    return "; ".join(report.refused) or None


@pytest.fixture(scope="module")
def attack_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("attacks")
    files = {}
    for index, (name, build) in enumerate(atk.ATTACKS.items()):
        files[name] = folder / f"attack{index}.joblib"
        files[name].write_bytes(build())
    return files


@pytest.fixture(scope="module")
def loaded(attack_files: dict[str, Path]) -> dict[str, dict[str, Any]]:
    outcomes = sandbox_load(list(attack_files.values()))
    return dict(zip(attack_files, outcomes, strict=True))


@pytest.mark.parametrize("attack", list(atk.ATTACKS))
def test_each_attack_is_a_working_exploit_for_joblib_load(
    attack: str, loaded: dict[str, dict[str, Any]]
) -> None:
    """The files are real: joblib.load runs the hidden os.system (blocked by the sandbox)."""
    assert loaded[attack]["forbidden"] == ["os.system: starts a process"]
    assert ["posix", "system"] in loaded[attack]["globals"]


@pytest.mark.parametrize("attack", list(atk.ATTACKS))
def test_the_inspector_refuses_each_attack(attack: str, attack_files: dict[str, Path]) -> None:
    message = refusal(attack_files[attack])

    assert message is not None, f"{attack}: passed the inspector, yet joblib.load runs os.system"


def test_the_honest_layout_of_the_attacks_passes_and_loads_cleanly(tmp_path: Path) -> None:
    """The builders' honest array passes: the refusals come from the tricks, not the layout."""
    path = tmp_path / "honest.joblib"
    path.write_bytes(atk.PROTO4 + atk.honest_array(b"abc") + atk.STOP)

    assert refusal(path) is None
    (outcome,) = sandbox_load([path])
    assert outcome["outcome"] == "loaded"
    assert outcome["forbidden"] == []


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("str_ key", "computed"),
        ("repeated shape key", "computed or repeated keys"),
        ("unknown attribute", "not the ones joblib writes"),
        ("shape as list", "shape is not a tuple of counts"),
        ("bool in shape", "shape is not a tuple of counts"),
        ("order X", "not one joblib writes"),
        ("dtype elsize on f8", "comes with a size or fields of its own"),
        ("dtype flags say objects", "flags that disagree"),
        ("U5 claiming 40 bytes", "claims 40 bytes"),
        ("unknown typestr", "not one whose item size this check knows"),
    ],
)
def test_placeholder_states_joblib_never_writes_are_refused(
    tmp_path: Path, case: str, expected: str
) -> None:
    """The placeholder's state is read only in the exact form joblib writes; all else refused."""
    shape = atk.small_tuple(atk.integer(3))
    extras = {
        "str_ key": atk.glob("numpy", "str_") + atk.text("shape") + atk.TUPLE1 + atk.REDUCE + shape,
        "repeated shape key": atk.text("shape") + shape,
        "unknown attribute": atk.text("offset") + atk.integer(0),
    }
    state = atk.wrapper_state((3,), extra=extras.get(case, b""))
    if case == "shape as list":
        state = state.replace(shape, atk.EMPTY_LIST + atk.integer(3) + atk.APPEND)
    if case == "bool in shape":
        state = state.replace(shape, atk.small_tuple(atk.NEWTRUE))
    if case == "order X":
        state = state.replace(atk.text("C"), atk.text("X"))
    dtype_cases = {
        "dtype elsize on f8": ("f8", (3, "<", None, None, None, 8, 8, 0)),
        "dtype flags say objects": ("f8", (3, "<", None, None, None, -1, -1, 1)),
        "U5 claiming 40 bytes": ("U5", (3, "<", None, None, None, 40, 4, 8)),
        "unknown typestr": ("f7", None),
    }
    if case in dtype_cases:
        typestr, dstate = dtype_cases[case]
        state = atk.wrapper_state((3,), typestr, dtype_state=dstate)
    path = tmp_path / "case.joblib"
    path.write_bytes(atk.PROTO4 + atk.placeholder() + state + atk.BUILD + bytes(64) + atk.STOP)

    message = refusal(path)

    assert message is not None
    assert expected in message


@pytest.mark.parametrize("typestr", ["b1", "i8", "u2", "f4", "f8", "c16", "M8", "m8"])
def test_fixed_size_dtypes_are_read_exactly(tmp_path: Path, typestr: str) -> None:
    """numpy's own dtype states pass, and the walk resumes right after count * itemsize bytes."""
    size = int("".join(filter(str.isdigit, typestr)))
    state = atk.wrapper_state((2, 3), typestr)
    body = atk.placeholder() + state + atk.BUILD + bytes(6 * size)
    path = tmp_path / "ok.joblib"
    path.write_bytes(atk.PROTO4 + body + atk.STOP)
    assert refusal(path) is None
    # One byte more and the walk reads a zero byte as an opcode: the count was exact.
    path.write_bytes(atk.PROTO4 + body + b"\x00" + atk.STOP)
    assert refusal(path) is not None


# --------------------------------------------------------------------------------------------
# Bounded work (finding 5).


def _zlib(data: bytes) -> bytes:
    return zlib.compress(data, 9)


@pytest.mark.parametrize(
    ("name", "data", "limits", "key"),
    [
        (
            "no-op flood",
            _zlib(atk.PROTO4 + b"N0" * 1_000_000 + b"N."),
            InspectionLimits(max_opcodes=500_000),
            "maxOpcodes=500000",
        ),
        (
            "DUP flood",
            _zlib(atk.PROTO4 + b"N" + b"2" * 1_000_000 + b"."),
            InspectionLimits(max_values=200_000),
            "maxValues=200000",
        ),
        (
            "memo flood",
            _zlib(atk.PROTO4 + b"N" + b"\x94" * 400_000 + b"."),
            InspectionLimits(max_values=200_000),
            "maxValues=200000",
        ),
        (
            "deep MARKs",
            atk.PROTO4 + b"(" * 5_000 + b"N" + b"t" * 5_000 + b".",
            InspectionLimits(max_nesting=1_000),
            "maxNesting=1000",
        ),
        (
            "decompressed size",
            _zlib(atk.PROTO4 + b"\x8e" + (1 << 30).to_bytes(8, "little") + bytes(3 << 20)),
            InspectionLimits(max_stream_mb=2),
            "maxStreamMb=2",
        ),
    ],
)
def test_each_limit_refuses_by_name(
    tmp_path: Path, name: str, data: bytes, limits: InspectionLimits, key: str
) -> None:
    path = tmp_path / "bomb.joblib"
    path.write_bytes(data)

    with pytest.raises(PickleLimitExceeded, match=rf"pickleLimits\.{key}") as caught:
        inspect_pickle(path, limits=limits)
    assert "raise skdeploy:pickleLimits." in str(caught.value)


def test_the_default_limits_hold_a_flood_of_dups(tmp_path: Path) -> None:
    """The issue's 48 KB of zlib holding 50 million DUPs is refused at the default maxValues."""
    path = tmp_path / "dups.joblib"
    path.write_bytes(_zlib(atk.PROTO4 + b"N" + b"2" * 50_000_000 + b"."))
    assert path.stat().st_size < 64 * 1024

    with pytest.raises(PickleLimitExceeded, match="maxValues=5000000"):
        inspect_pickle(path)


DEEP = 200_000


@pytest.mark.parametrize(
    "data",
    [
        atk.PROTO4 + b"]" * DEEP + b"a" * (DEEP - 1) + b".",  # lists appended into lists
        atk.PROTO4 + b")" + b"\x85" * DEEP + b".",  # tuples of tuples
        atk.PROTO4 + b"}" * DEEP + (b"N" + b"s") * 0 + b".",
        atk.PROTO4 + b"(" * DEEP + b"]" + b"l" * DEEP + b".",  # MARK nesting
    ],
    ids=["append", "tuple1", "dicts", "marks"],
)
def test_deep_nesting_is_an_answer_not_a_traceback(tmp_path: Path, data: bytes) -> None:
    """200,000-deep structures either pass or are refused by name; nothing recurses."""
    path = tmp_path / "deep.joblib"
    path.write_bytes(data)

    message = refusal(path)

    assert message is None or "pickleLimits.maxNesting" in message


def test_a_long_text_line_is_refused_not_read_into_memory(tmp_path: Path) -> None:
    path = tmp_path / "line.pkl"
    path.write_bytes(_zlib(b"S'" + b"a" * (8 << 20)))

    message = refusal(path)

    assert message is not None
    assert "longer than" in message


@pytest.mark.parametrize(
    "build",
    [
        lambda: atk.PROTO4 + b"\x95" + (10).to_bytes(8, "little") + b"N" * 8 + b"\x8c\x05abcdef.",
        lambda: atk.PROTO4 + b"\x95" + (4).to_bytes(8, "little") + b"N0\x95" + bytes(8) + b"N.",
    ],
    ids=["argument across the frame end", "frame inside a frame"],
)
def test_frames_are_followed_as_pythons_unpickler_does(
    build: Callable[[], bytes], tmp_path: Path
) -> None:
    path = tmp_path / "frame.pkl"
    path.write_bytes(build())

    assert refusal(path) is not None


# --------------------------------------------------------------------------------------------
# The stack's limits reach every gate, and the serve gate fails closed.


def _project_with_limits(tmp_path: Path, limits: str) -> Path:
    project = copy_project(tmp_path / "project")
    stack = project / "stacks" / "Pulumi.dev.yaml"
    stack.write_text(stack.read_text() + f"  skdeploy:pickleLimits: {limits}\n")
    return project


def test_check_applies_the_stacks_pickle_limits(tmp_path: Path) -> None:
    project = _project_with_limits(tmp_path, "{maxOpcodes: 50}")

    result = subprocess.run(
        [sys.executable, "-m", "skdeploy", "check", "--static", "-s", "dev"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert result.returncode == 1, result.stdout + result.stderr
    assert "pickleLimits.maxOpcodes=50" in result.stdout + result.stderr
    assert "Traceback" not in result.stderr


def test_serve_does_not_load_a_pickle_it_could_not_inspect(tmp_path: Path) -> None:
    """A model over a limit is unknown, not harmless: serve refuses to unpickle it."""
    project = _project_with_limits(tmp_path, "{maxOpcodes: 50}")
    settings = load_stack_settings(project, "dev")

    with pytest.raises(ServeError, match=r"cannot be inspected.*pickleLimits\.maxOpcodes=50"):
        refuse_unsafe_pickles(settings)
    # With the default limits the same model is served.
    refuse_unsafe_pickles(load_stack_settings(copy_project(tmp_path / "plain"), "dev"))


@pytest.mark.parametrize(
    "state",
    [
        atk.EMPTY_DICT + atk.text("__array_interface__") + atk.EMPTY_DICT + atk.SETITEM,
        atk.EMPTY_DICT
        + atk.glob("numpy", "str_")
        + atk.text("__array_interface__")
        + atk.TUPLE1
        + atk.REDUCE
        + atk.EMPTY_DICT
        + atk.SETITEM,
        atk.glob("builtins", "dict")
        + atk.small_tuple(atk.EMPTY_LIST + atk.small_tuple(atk.text("x"), atk.NONE) + atk.APPEND)
        + atk.REDUCE,
        atk.small_tuple(atk.NONE, atk.EMPTY_DICT + atk.text("__dict__") + atk.NONE + atk.SETITEM),
    ],
    ids=["dunder key", "numpy.str_ dunder key", "dict built by a call", "dunder slot"],
)
def test_a_build_cannot_set_special_or_unseen_attributes(tmp_path: Path, state: bytes) -> None:
    """An __array_interface__ in an instance's __dict__ lets a ufunc read any address."""
    instance = atk.glob("copyreg", "_reconstructor") + atk.small_tuple(
        atk.glob("sklearn.preprocessing._data", "StandardScaler"),
        atk.glob("builtins", "object"),
        atk.NONE,
    )
    path = tmp_path / "state.pkl"
    path.write_bytes(atk.PROTO4 + instance + atk.REDUCE + state + atk.BUILD + atk.STOP)

    message = refusal(path)

    assert message is not None
    assert "BUILD" in message


_W = atk.glob("joblib.numpy_pickle", "NumpyArrayWrapper")


@pytest.mark.parametrize(
    "stored",
    [
        atk.EMPTY_DICT + atk.text("x") + _W + atk.SETITEM,
        atk.EMPTY_DICT + _W + atk.NONE + atk.SETITEM,
        atk.EMPTY_DICT + atk.MARK + atk.text("x") + _W + atk.SETITEMS,
        atk.EMPTY_LIST + _W + atk.APPEND,
        atk.small_tuple(atk.text("x"), _W),
    ],
    ids=["SETITEM value", "SETITEM key", "SETITEMS", "APPEND", "tuple"],
)
def test_joblibs_placeholder_class_cannot_be_stored_anywhere(tmp_path: Path, stored: bytes) -> None:
    """The placeholder class is only ever consumed by the two constructions joblib writes."""
    path = tmp_path / "stored.pkl"
    path.write_bytes(atk.PROTO4 + stored + atk.STOP)

    message = refusal(path)

    assert message is not None
    assert "NumpyArrayWrapper" in message
