"""What the pickle inspection tests share: small fitted models and hand-written pickles."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skdeploy.core.frameworks import get_framework

FRAMEWORK_1_2 = get_framework("1.2-1")
FRAMEWORK_1_4 = get_framework("1.4-2")

MODELS: dict[str, Callable[[np.ndarray, np.ndarray], BaseEstimator]] = {
    "linear": lambda X, y: LinearRegression().fit(X, y),
    "pipeline": lambda X, y: make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y),
    "forest": lambda X, y: RandomForestClassifier(n_estimators=5, random_state=0).fit(X, y),
}


def fit_models() -> dict[str, BaseEstimator]:
    """Each of :data:`MODELS`, fitted on the same small random data."""
    rng = np.random.RandomState(0)
    X = rng.rand(60, 4)
    y = (X[:, 0] + X[:, 1] > 1).astype(int)
    return {name: build(X, y) for name, build in MODELS.items()}


def unicode_opcode(text: str) -> bytes:
    """BINUNICODE: push ``text``."""
    data = text.encode()
    return pickle.BINUNICODE + len(data).to_bytes(4, "little") + data


def global_opcode(module: str, name: str, protocol: int) -> bytes:
    """Push ``module.name`` as the protocol writes it (STACK_GLOBAL from protocol 4)."""
    if protocol >= 4:
        return unicode_opcode(module) + unicode_opcode(name) + pickle.STACK_GLOBAL
    return pickle.GLOBAL + f"{module}\n{name}\n".encode()


def call_pickle(module: str, name: str, args: tuple[str, ...] = (), protocol: int = 4) -> bytes:
    """A hand-written pickle that imports ``module.name`` and calls it with string args."""
    return (
        pickle.PROTO
        + bytes([protocol])
        + global_opcode(module, name, protocol)
        + pickle.MARK
        + b"".join(unicode_opcode(arg) for arg in args)
        + pickle.TUPLE
        + pickle.REDUCE
        + pickle.STOP
    )


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
