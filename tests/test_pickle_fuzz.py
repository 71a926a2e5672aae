"""Differential fuzz: whatever the inspector passes, the real joblib.load loads harmlessly.

Cases are mutations of real scikit-learn models' joblib files (bit flips, spliced ranges,
inserted attack snippets: hidden calls, frames, ``numpy.str_`` keys, placeholders built other
ways) plus the crafted attacks themselves. Each case goes through the inspector; every case it
passes is then loaded by the real ``joblib.load`` in one sandboxed subprocess
(``tests/sandbox_load.py``) and must (1) attempt no forbidden effect and (2) make the unpickler
look up no global the inspector did not report: the inspector and the loader walked the same
opcodes. ``FUZZ_CASES`` sets the number of cases (``make fuzz`` runs many more).
"""

from __future__ import annotations

import _compat_pickle
import io
import os
import random
import struct
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.compose import make_column_transformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from skdeploy.core.pickle.inspect import PickleInspectionError, inspect_pickle
from tests import pickle_attacks as atk
from tests.test_pickle_attacks import sandbox_load

CASES = int(os.environ.get("FUZZ_CASES", "400"))
SEED = int(os.environ.get("FUZZ_SEED", "13"))

#: Snippets an attacker would splice in: hidden calls, frames, computed keys, placeholders.
SNIPPETS = [
    atk.HIDDEN,
    b"\x95" + struct.pack("<Q", 40),
    atk.glob("numpy", "str_") + atk.text("shape") + atk.TUPLE1 + atk.REDUCE,
    atk.glob("joblib.numpy_pickle", "NumpyArrayWrapper") + atk.EMPTY_TUPLE + atk.NEWOBJ,
    atk.glob("functools", "partial"),
    atk.text("shape") + atk.small_tuple(atk.integer(0)),
    b"B" + struct.pack("<I", 30),
    b"\x00" * 8,
    atk.BUILD,
    b"h\x00",
]


def _seeds() -> list[bytes]:
    rng = np.random.default_rng(0)
    features = rng.normal(size=(40, 3))
    labels = (features[:, 0] > 0).astype(int)
    frame = pd.DataFrame({"x": features[:, 0], "city": rng.choice(["a", "b", "c"], size=40)})
    models = [
        make_pipeline(StandardScaler(), LogisticRegression()).fit(features, labels),
        RandomForestClassifier(n_estimators=2, max_depth=2, random_state=0).fit(features, labels),
        make_pipeline(
            make_column_transformer((OneHotEncoder(), ["city"]), remainder="passthrough"),
            LogisticRegression(),
        ).fit(frame, labels),
    ]
    seeds = []
    for model in models:
        buffer = io.BytesIO()
        joblib.dump(model, buffer)
        seeds.append(buffer.getvalue())
    seeds += [build() for build in atk.ATTACKS.values()]
    return seeds


def _mutate(rng: random.Random, data: bytes, seeds: list[bytes]) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 3)):
        where = rng.randrange(len(out))
        kind = rng.randrange(6)
        if kind == 0:
            out[where] ^= 1 << rng.randrange(8)
        elif kind == 1:
            out[where] = rng.randrange(256)
        elif kind == 2:
            out[where:where] = rng.choice(SNIPPETS)
        elif kind == 3:
            del out[where : where + rng.randint(1, 16)]
        elif kind == 4:
            other = rng.choice(seeds)
            start = rng.randrange(len(other))
            out[where:where] = other[start : start + rng.randint(1, 64)]
        else:
            start = rng.randrange(len(out))
            out[where:where] = out[start : start + rng.randint(1, 32)]
    return bytes(out)


def _renamed(module: str, name: str) -> tuple[str, str]:
    """A find_class argument after the unpickler's Python 2 renaming (protocols < 3)."""
    if (module, name) in _compat_pickle.NAME_MAPPING:
        return _compat_pickle.NAME_MAPPING[(module, name)]
    return _compat_pickle.IMPORT_MAPPING.get(module, module), name


def test_whatever_the_inspector_passes_joblib_loads_harmlessly(
    tmp_path: Path, record_property: pytest.RecordProperty
) -> None:
    seeds = _seeds()
    rng = random.Random(SEED)  # noqa: S311 - reproducible test cases, not secrets
    passed: dict[Path, set[tuple[str, str]]] = {}
    for index in range(CASES):
        data = _mutate(rng, rng.choice(seeds), seeds) if index >= len(seeds) else seeds[index]
        path = tmp_path / f"case{index}.joblib"
        path.write_bytes(data)
        try:
            report = inspect_pickle(path)
        except PickleInspectionError:
            continue
        if not report.refused:
            passed[path] = set(report.globals)
    print(f"fuzz: {CASES} cases, {len(passed)} passed the inspector and were loaded")
    record_property("fuzz_cases", CASES)
    record_property("fuzz_passed", len(passed))
    # The real models pass: the fuzz loads something, not only refusals.
    assert len(passed) >= 3

    for outcome in sandbox_load(list(passed)):
        path = Path(outcome["file"])
        assert outcome["forbidden"] == [], f"{path.name}: {outcome}"
        unseen = [
            (module, name)
            for module, name in outcome["globals"]
            if (module, name) not in passed[path] and _renamed(module, name) not in passed[path]
        ]
        assert unseen == [], f"{path.name}: joblib.load looked up {unseen}, unseen by the inspector"
