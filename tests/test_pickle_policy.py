"""The pickle allow-list: gadgets refused under every name, real models allowed, data up to date."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.cluster import KMeans
from sklearn.compose import ColumnTransformer
from sklearn.decomposition import PCA
from sklearn.ensemble import (
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
)
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.feature_selection import SelectKBest, f_classif
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler
from sklearn.svm import SVC

from skdeploy.core.pickle.inspect import PickleReport, inspect_pickle
from skdeploy.core.pickle.policy import allowed_globals, global_refusal
from skdeploy.tooling.pickle_allowlist_gen import DATA_FILE, collect_in, review_spec
from tests.support import REPO

#: Callables and classes of the allowed libraries that touch files, processes or raw memory,
#: or import by name, under their public and private names (numpy 1 and numpy 2 spellings).
GADGETS = [
    # issue 13: arbitrary file write on load, file readers and writers, import by name
    "numpy.core._methods._dump",
    "numpy._core._methods._dump",
    "numpy.core._methods._dumps",
    "sklearn.tree.export_graphviz",
    "sklearn.tree._export.export_graphviz",
    "numpy.add_newdoc",
    "numpy.lib.add_newdoc",
    "numpy.core.function_base.add_newdoc",
    "numpy._core.function_base.add_newdoc",
    "numpy.ma.mrecords.openfile",
    "numpy.ma.mrecords.fromtextfile",
    "numpy.recfromcsv",
    "numpy.lib.npyio.recfromcsv",
    "scipy.sparse.save_npz",
    "scipy.sparse._matrix_io.save_npz",
    "scipy.sparse.load_npz",
    # classes whose constructor, __setstate__ or __del__ touches files or processes
    "numpy.memmap",
    "numpy.core.memmap.memmap",
    "numpy._core.memmap.memmap",
    "numpy.DataSource",
    "numpy.lib._datasource.DataSource",
    "numpy.lib.npyio.DataSource",
    "numpy.lib.npyio.NpzFile",
    "numpy.lib._npyio_impl.NpzFile",
    "pandas.HDFStore",
    "pandas.io.pytables.HDFStore",
    "pandas.ExcelWriter",
    "pandas.ExcelFile",
    "scipy.odr.ODR",
    "scipy.odr._odrpack.ODR",
    "scipy.optimize._differentialevolution.DifferentialEvolutionSolver",
    "scipy.optimize._shgo.SHGO",
    "scipy.optimize._shgo_lib._vertex.VertexCacheField",
    "sklearn.utils.parallel.Parallel",
    "sklearn.utils.parallel.delayed",
    "joblib.Memory",
    "joblib.Parallel",
    # raw memory by address
    "numpy.lib.stride_tricks.DummyArray",
    "numpy.lib._stride_tricks_impl.DummyArray",
    "numpy._core._internal._ctypes",
    "numpy.ctypeslib.as_array",
    "scipy.LowLevelCallable",
    "scipy._lib._ccallback.LowLevelCallable",
    # other readers, writers and code runners of the libraries
    "numpy.load",
    "numpy.fromfile",
    "numpy.lib.format.open_memmap",
    "numpy.testing._private.utils.runstring",
    "pandas.read_pickle",
    "pandas.eval",
    "pandas.io.clipboards.to_clipboard",
    "sklearn.datasets.fetch_openml",
    "sklearn.utils._show_versions.show_versions",
]

#: Objects no name of the libraries may reach, and how to find them.
DANGEROUS_OBJECTS = [
    "joblib.Memory",
    "joblib.Parallel",
    "joblib.load",
    "joblib.dump",
    "pickle.load",
    "pickle.loads",
    "builtins.open",
    "builtins.eval",
    "builtins.exec",
    "builtins.getattr",
    "builtins.__import__",
    "importlib.import_module",
    "os.system",
    "subprocess.Popen",
    "numpy.load",
    "numpy.save",
    "numpy.memmap",
    "numpy._core._methods._dump",
]


def _unicode(text: str) -> bytes:
    data = text.encode()
    return pickle.BINUNICODE + len(data).to_bytes(4, "little") + data


def _crafted(qualname: str, protocol: int) -> bytes:
    """``module.name`` imported (GLOBAL below protocol 4, STACK_GLOBAL from 4) and called."""
    module, _, name = qualname.rpartition(".")
    if protocol >= 4:
        reference = _unicode(module) + _unicode(name) + pickle.STACK_GLOBAL
    else:
        reference = pickle.GLOBAL + f"{module}\n{name}\n".encode()
    argument = _unicode("/tmp/skdeploy-pwned")
    return (
        pickle.PROTO + bytes([protocol]) + reference + pickle.MARK + argument + pickle.TUPLE
    ) + (pickle.REDUCE + pickle.STOP)


def _refused_names(report: PickleReport) -> set[str]:
    return {message.split(":", 1)[0] for message in report.refused}


class _Payload:
    """Pickles as ``func(*args)``, as an attacker's object would."""

    def __init__(self, func: Any, *args: Any) -> None:
        self.func, self.args = func, args

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return self.func, self.args


# ------------------------------------------------------------------------------------------
# gadgets


@pytest.mark.parametrize("protocol", [2, 4])
@pytest.mark.parametrize("qualname", GADGETS)
def test_each_gadget_is_refused_by_name(tmp_path: Path, qualname: str, protocol: int) -> None:
    """A pickle importing and calling a gadget is refused, naming it, under GLOBAL and
    STACK_GLOBAL."""
    path = tmp_path / "p.pkl"
    path.write_bytes(_crafted(qualname, protocol))

    report = inspect_pickle(path)

    assert _refused_names(report) == {qualname}


@pytest.mark.parametrize("qualname", GADGETS)
def test_trust_cannot_unlock_a_gadget(qualname: str) -> None:
    """Trusting the gadget's own module, naming the gadget as its class, does not allow it."""
    module, name = qualname.rsplit(".", 1)
    assert global_refusal(module, name, {module: {name}, module.split(".")[0]: {name}}) is not None


def test_numpy_dump_writes_a_file_on_load_and_is_refused(tmp_path: Path) -> None:
    """numpy's _dump(arr, path) in a joblib model file: refused; loading it writes the file."""
    target = tmp_path / "written-by-the-pickle"
    dump = np._core._methods._dump
    model = LogisticRegression().fit([[0.0], [1.0]], [0, 1])
    path = tmp_path / "model.joblib"
    joblib.dump({"model": model, "x": _Payload(dump, np.arange(3), str(target))}, path)

    report = inspect_pickle(path)

    assert _refused_names(report) == {"numpy._core._methods._dump"}
    assert not target.exists()
    joblib.load(path)  # control: the gadget is real
    assert target.exists()


def test_refusals_say_why(tmp_path: Path) -> None:
    """A library function off the list says so, and why it is dangerous when that is known."""
    message = global_refusal("sklearn.tree", "export_graphviz")
    assert message is not None
    assert "writes files" in message
    assert "not a class, ufunc or reviewed function" in message
    unknown = global_refusal("sklearn.linear_model", "ARegressorFromAFutureVersion")
    assert unknown is not None
    assert "refused, not guessed" in unknown


@pytest.mark.parametrize("target", DANGEROUS_OBJECTS)
def test_no_allowed_name_reaches_a_dangerous_object(target: str) -> None:
    """No allowed name, whatever module re-exports it, is bound to a dangerous object here."""
    module, _, name = target.rpartition(".")
    __import__(module)
    dangerous = getattr(sys.modules[module], name)
    for qualname in allowed_globals():
        owner, _, attribute = qualname.rpartition(".")
        if owner in sys.modules:
            assert vars(sys.modules[owner]).get(attribute) is not dangerous, qualname


def test_trusted_modules_admit_their_classes_only() -> None:
    """Trust admits the classes listed for a shipped module; its other names, sub-modules and
    the libraries' names stay refused."""
    module = f"user_code_{uuid.uuid4().hex}"
    trusted = {module: {"MyTransformer"}}
    assert global_refusal(module, "MyTransformer") is not None
    assert global_refusal(module, "MyTransformer", trusted) is None
    helper = global_refusal(module, "make_features", trusted)
    assert helper is not None
    assert "classes only" in helper
    assert global_refusal(f"{module}.sub", "MyTransformer", trusted) is not None
    assert global_refusal(module, "__class__", {module: {"__class__"}}) is not None
    assert global_refusal("builtins", "eval", {"builtins": {"eval"}}) is not None


# ------------------------------------------------------------------------------------------
# the generated data


@pytest.fixture(scope="module")
def tool_environment() -> dict[str, Any]:
    """What the generator finds in the tool environment, with every name of the data checked."""
    spec = review_spec()
    spec["check"] = sorted(allowed_globals())
    return collect_in(sys.executable, spec)


def test_the_data_is_up_to_date_with_the_tool_environment(tool_environment: dict[str, Any]) -> None:
    """Regenerating here adds and drops nothing, and records these library versions."""
    data = json.loads(DATA_FILE.read_text())
    allowed = set(allowed_globals())
    missing = set(tool_environment["allowed"]) - allowed - set(data["refused_elsewhere"])
    assert not missing, sorted(missing)[:20]
    assert not allowed & set(tool_environment["refused"])
    assert tool_environment["environment"] in data["environments"]


def test_every_name_in_the_data_is_an_allowed_object_here(tool_environment: dict[str, Any]) -> None:
    """A hand edit that adds a function (or any disallowed object) to the data is caught."""
    wrong = {q: kind for q, kind in tool_environment["checked"].items() if kind is None}
    assert not wrong
    assert len(tool_environment["checked"]) > 5000


# ------------------------------------------------------------------------------------------
# real models


def _frame() -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.RandomState(0)
    frame = pd.DataFrame(
        {
            "a": rng.rand(60),
            "b": rng.rand(60),
            "c": pd.Categorical(rng.choice(["x", "y", "z"], 60)),
            "t": pd.date_range("2020-01-01", periods=60, tz="UTC"),
        }
    )
    return frame, (frame["a"] > 0.5).to_numpy().astype(int)


def _real_models() -> dict[str, object]:
    frame, y = _frame()
    X = frame[["a", "b"]].to_numpy()
    columns = ColumnTransformer(
        [("num", StandardScaler(), ["a", "b"]), ("cat", OneHotEncoder(), ["c"])]
    )
    return {
        "pipeline": make_pipeline(columns, LogisticRegression()).fit(frame, y),
        "forest": RandomForestClassifier(n_estimators=3, random_state=0).fit(X, y),
        "boosting": GradientBoostingClassifier(n_estimators=3).fit(X, y),
        "boosting-regressor": GradientBoostingRegressor(n_estimators=3).fit(X, X[:, 0]),
        "hist-boosting": HistGradientBoostingClassifier(max_iter=3).fit(X, y),
        "svc": SVC().fit(X, y),
        "knn": KNeighborsClassifier().fit(X, y),
        "kmeans": KMeans(2, n_init=2, random_state=0).fit(X),
        "pca": PCA(1).fit(X),
        "tfidf": TfidfVectorizer().fit(["alpha beta gamma", "beta gamma delta"]),
        "kbest": SelectKBest(f_classif, k=1).fit(X, y),
        "log1p": FunctionTransformer(np.log1p).fit(X),
        "search": GridSearchCV(LogisticRegression(), {"C": [1.0, 2.0]}, cv=2).fit(X, y),
        "pandas-inside": {"model": LogisticRegression().fit(X, y), "frame": frame},
        "series-and-categorical": {"s": frame["a"], "c": frame["c"].array, "ts": frame["t"][0]},
        "random-state": {"rs": np.random.RandomState(0), "gen": np.random.default_rng(0)},
    }


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_real_models_pass(tmp_path: Path, protocol: int) -> None:
    """Fitted estimators of every common kind, dumped with joblib here, refuse nothing."""
    for name, model in _real_models().items():
        path = tmp_path / f"{name}.joblib"
        joblib.dump(model, path, protocol=protocol)
        assert inspect_pickle(path).refused == (), name


def test_the_projects_model_passes() -> None:
    """The repository's own model/model.joblib refuses nothing."""
    assert inspect_pickle(REPO / "model" / "model.joblib").refused == ()


RUNTIME_SCRIPT = textwrap.dedent(
    """
    import sys
    import joblib, numpy as np, pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
    from sklearn.feature_selection import SelectKBest, f_classif
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler
    rng = np.random.RandomState(0)
    frame = pd.DataFrame({"a": rng.rand(40), "b": rng.rand(40),
                          "c": pd.Categorical(rng.choice(["x", "y"], 40))})
    y = (frame["a"] > 0.5).astype(int).values
    X = frame[["a", "b"]].values
    columns = ColumnTransformer(
        [("n", StandardScaler(), ["a", "b"]), ("c", OneHotEncoder(), ["c"])]
    )
    models = {
        "pipeline": make_pipeline(columns, LogisticRegression()).fit(frame, y),
        "forest": RandomForestClassifier(n_estimators=3).fit(X, y),
        "boosting": GradientBoostingClassifier(n_estimators=3).fit(X, y),
        "knn": KNeighborsClassifier().fit(X, y),
        "kbest": SelectKBest(f_classif, k=1).fit(X, y),
        "log1p": FunctionTransformer(np.log1p).fit(X),
        "frame": {"frame": frame, "ts": pd.Timestamp("2020", tz="UTC")},
    }
    for name, model in models.items():
        joblib.dump(model, sys.argv[1] + "/" + name + ".joblib")
    """
)


@pytest.mark.runtime
def test_models_dumped_in_the_1_2_1_runtime_pass(runtime_python: Path, tmp_path: Path) -> None:
    """Models written by scikit-learn 1.2.1, numpy 1.24 and pandas 1.1.3 refuse nothing."""
    subprocess.run([str(runtime_python), "-c", RUNTIME_SCRIPT, str(tmp_path)], check=True)
    files = sorted(tmp_path.glob("*.joblib"))
    assert len(files) == 7
    for path in files:
        assert inspect_pickle(path).refused == (), path.name
