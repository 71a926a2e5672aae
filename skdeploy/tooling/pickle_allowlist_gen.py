"""Generate ``core/pickle/allowlist.json``: every allowed ``module.name``, from real installs.

The pickle policy decides by the object a name resolves to, under every name it can be reached
by. Which objects are allowed is reviewed by hand in :mod:`skdeploy.core.pickle.allowlist`; which
names reach them depends on the library versions, so this script imports every module of
scikit-learn, numpy, scipy and pandas (tests and build tools skipped) in each environment,
looks at every module-level name, and records the names bound to an allowed object. A name
allowed in one environment but bound to anything else in another is dropped (the container's
versions may be the other ones).

Re-run it after changing the review or the framework pins, from the repository root::

    build/uv/bin/uv run --frozen python -m skdeploy.tooling.pickle_allowlist_gen \\
        --python build/runtime/1.2-1/bin/python --python PY_1_4_2 --python PY_1_0_1 ...

The tool environment is always included. Each ``--python`` is an interpreter whose environment
holds one framework version's scikit-learn, numpy, scipy and pandas; a throwaway virtualenv is
enough, e.g. for 1.4-2: ``build/uv/bin/uv venv -p 3.10 /tmp/v14 && build/uv/bin/uv pip install
-p /tmp/v14/bin/python scikit-learn==1.4.2 numpy==2.1.0 pandas==2.3.2 'scipy>=1.9,<1.16'``.

The collecting half (``--collect``) runs under those interpreters (Python 3.8 and later), so it
uses the standard library only and never imports :mod:`skdeploy`.
"""

from __future__ import annotations

import importlib
import inspect
import json
import pkgutil
import sys
import warnings
from pathlib import Path
from typing import Any

#: The allow-list data of :mod:`skdeploy.core.pickle.policy`; this file also runs as a script in a
#: runtime virtualenv, where skdeploy is not importable, so the path is spelled out.
DATA_FILE = Path(__file__).resolve().parents[1] / "core" / "pickle" / "allowlist.json"
#: The key under which the metric functions of scikit-learn's built-in scorers are allowed.
SCORER_KEY = "sklearn.metrics.get_scorer_names"


# --------------------------------------------------------------------------------------------
# Collecting: runs in each environment.


def _resolve(path: str) -> Any:
    module, _, name = path.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except Exception:
        return None


def _skipped(module: str, parts: list[str]) -> bool:
    return any(part in parts for part in module.split("."))


def _walk(package: str, parts: list[str], found: set[str]) -> None:
    try:
        imported = importlib.import_module(package)
    except Exception:
        return
    found.add(package)
    for info in pkgutil.iter_modules(getattr(imported, "__path__", None) or []):
        name = f"{package}.{info.name}"
        if _skipped(name, parts):
            continue
        if info.ispkg:
            _walk(name, parts, found)
            continue
        try:
            importlib.import_module(name)
        except Exception:  # noqa: S112  # nosec B112 - optional modules may fail to import
            continue
        found.add(name)


def _in(module: str, prefixes: Any) -> str | None:
    for prefix in prefixes:
        if module == prefix or module.startswith(prefix + "."):
            return str(prefix)
    return None


def _denied_files(prefixes: list[str]) -> list[str]:
    """Source files and directories of the denied modules (classes may lie in __module__)."""
    files: list[str] = []
    for prefix in prefixes:
        module = sys.modules.get(prefix)
        if module is None:
            continue
        files.extend(str(Path(p)) + "/" for p in getattr(module, "__path__", None) or [])
        filename = getattr(module, "__file__", None)
        if filename and not hasattr(module, "__path__"):
            files.append(str(Path(filename)))
    return files


def _class_refusal(
    cls: type, review: dict[str, Any], denied: dict[int, str], files: list[str]
) -> str | None:
    module = getattr(cls, "__module__", None)
    if not isinstance(module, str) or _in(module, review["libraries"]) is None:
        return "not defined in an allowed library"
    prefix = _in(module, review["denied_class_modules"])
    if prefix is not None:
        return str(review["denied_class_modules"][prefix])
    for value in vars(cls).values():
        function = getattr(value, "__func__", value)
        try:
            function = inspect.unwrap(function)  # decorators may live in other modules
        except Exception:  # noqa: S112  # nosec B112 - optional modules may fail to import
            continue
        if not str(getattr(function, "__qualname__", "")).startswith(cls.__qualname__ + "."):
            continue  # a function assigned to the class, not defined in its body
        code = getattr(function, "__code__", None)
        filename = getattr(code, "co_filename", "")
        if any(filename == f or filename.startswith(f) for f in files):
            return "defined in a denied module"
    for base in cls.__mro__:
        if id(base) in denied:
            return denied[id(base)]
        base_module = getattr(base, "__module__", "") or ""
        prefix = _in(base_module, review["denied_base_modules"])
        if prefix is not None:
            return str(review["denied_base_modules"][prefix])
    return None


def _kind(name: str, obj: Any, ctx: dict[str, Any]) -> str | None:
    """``c`` class, ``u`` ufunc, ``p`` Cython unpickler, ``r:<key>`` reviewed, or None."""
    key = ctx["reviewed"].get(id(obj))
    if key is not None:
        return "r:" + str(key)
    if isinstance(obj, type):
        refusal = _class_refusal(obj, ctx["review"], ctx["denied"], ctx["files"])
        return "c" if refusal is None else None
    if ctx["ufunc"] is not None and isinstance(obj, ctx["ufunc"]):
        return None if "vectorized" in str(getattr(obj, "__name__", "")) else "u"
    module = getattr(obj, "__module__", None) or ""
    if (
        name.startswith("__pyx_unpickle_")
        and type(obj).__name__ in ("builtin_function_or_method", "cython_function_or_method")
        and isinstance(module, str)
        and _in(module, ctx["review"]["libraries"]) is not None
    ):
        return "p"
    return None


def collect(review: dict[str, Any]) -> dict[str, Any]:
    """Every reachable ``module.name`` of the libraries, split into allowed (with its kind)
    and not allowed."""
    warnings.simplefilter("ignore")
    found = _found_modules(review)
    keep: list[object] = []  # keeps resolved objects alive, so that their ids stay unique
    numpy = sys.modules.get("numpy")
    ctx = {
        "review": review,
        "reviewed": _reviewed_ids(review, keep),
        "denied": _denied_ids(review, keep),
        "files": _denied_files(list(review["denied_class_modules"])),
        "ufunc": getattr(numpy, "ufunc", None),
    }
    allowed, refused = _classify(found, ctx)
    checked: dict[str, str | None] = {}
    for qualname in review.get("check", ()):
        module_name, _, name = qualname.rpartition(".")
        try:
            obj = getattr(importlib.import_module(module_name), name)
        except Exception:  # noqa: S112  # nosec B112 - optional modules may fail to import
            continue  # not in this environment
        checked[qualname] = _kind(name, obj, ctx)
    versions = {"python": ".".join(str(part) for part in sys.version_info[:3])}
    for library in (*review["libraries"], "joblib"):
        versions[library] = str(getattr(sys.modules.get(library), "__version__", "absent"))
    return {"environment": versions, "allowed": allowed, "refused": refused, "checked": checked}


def _found_modules(review: dict[str, Any]) -> set[str]:
    """The libraries' modules (walked and already imported), and those of reviewed objects."""
    parts = list(review["skipped_module_parts"])
    found: set[str] = set()
    for library in review["libraries"]:
        _walk(library, parts, found)
    found.update(
        m for m in list(sys.modules) if _in(m, review["libraries"]) and not _skipped(m, parts)
    )
    for paths in review["reviewed"].values():
        for path in paths:
            module = path.rpartition(".")[0]
            if _in(module, review["libraries"]) is None and _resolve(path) is not None:
                found.add(module)
    return found


def _reviewed_ids(review: dict[str, Any], keep: list[object]) -> dict[int, str]:
    """``id`` of each reviewed object (and each built-in scorer's metric) -> its review key."""
    reviewed: dict[int, str] = {}
    for key, paths in review["reviewed"].items():
        for path in paths:
            obj = _resolve(path)
            if obj is not None:
                keep.append(obj)
                reviewed[id(obj)] = key
    scorers = sys.modules.get("sklearn.metrics._scorer")
    table = getattr(scorers, "_SCORERS", None) or getattr(scorers, "SCORERS", None) or {}
    for scorer in table.values():
        obj = getattr(scorer, "_score_func", None)
        if obj is not None and id(obj) not in reviewed:
            keep.append(obj)
            reviewed[id(obj)] = SCORER_KEY
    return reviewed


def _denied_ids(review: dict[str, Any], keep: list[object]) -> dict[int, str]:
    """``id`` of each denied class -> why it is denied."""
    denied: dict[int, str] = {}
    for reason, paths in review["denied_classes"].values():
        for path in paths:
            obj = _resolve(path)
            if isinstance(obj, type):
                keep.append(obj)
                denied[id(obj)] = reason
    return denied


def _classify(found: set[str], ctx: dict[str, Any]) -> tuple[dict[str, str], list[str]]:
    """Every module-level name of ``found``: allowed (name -> kind) or refused."""
    allowed: dict[str, str] = {}
    refused: list[str] = []
    for module_name in sorted(found):
        module = sys.modules.get(module_name)
        if module is None:
            continue
        names = set(dir(module))
        if module_name.startswith("numpy.core."):  # numpy 2's shims forward to numpy._core
            twin = sys.modules.get("numpy._core." + module_name[len("numpy.core.") :])
            names.update(dir(twin) if twin is not None else ())
        for name in sorted(names):
            if not name.isidentifier():
                continue
            try:
                obj = getattr(module, name)
            except Exception:  # noqa: S112  # nosec B112 - optional modules may fail to import
                continue
            kind = _kind(name, obj, ctx)
            if kind is None:
                refused.append(f"{module_name}.{name}")
            else:
                allowed[f"{module_name}.{name}"] = kind
    return allowed, refused


# --------------------------------------------------------------------------------------------
# Merging: runs in the tool environment.


def review_spec() -> dict[str, Any]:
    """The hand-reviewed decisions, as plain data for the collectors."""
    from skdeploy.core.pickle import allowlist as review

    return {
        "libraries": list(review.LIBRARIES),
        "skipped_module_parts": list(review.SKIPPED_MODULE_PARTS),
        "reviewed": {key: list(paths) for key, (_, paths) in review.REVIEWED.items()},
        "denied_class_modules": dict(review.DENIED_CLASS_MODULES),
        "denied_classes": {k: [r, list(p)] for k, (r, p) in review.DENIED_CLASSES.items()},
        "denied_base_modules": dict(review.DENIED_BASE_MODULES),
    }


def collect_in(python: str, spec: dict[str, Any]) -> dict[str, Any]:
    """Run :func:`collect` under another interpreter (isolated: no script dir, no user site)."""
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory() as work:
        output = Path(work) / "collected.json"
        subprocess.run(
            [python, "-I", str(Path(__file__).resolve()), "--collect", str(output)],
            input=json.dumps(spec),
            capture_output=True,  # libraries print on import; the result goes to a file
            text=True,
            check=True,
        )
        result: dict[str, Any] = json.loads(output.read_text())
    return result


def merge(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Names allowed somewhere and refused nowhere, grouped by kind and module (sorted)."""
    refused = {name for result in results for name in result["refused"]}
    allowed: dict[str, str] = {}
    conflicts: set[str] = set()
    for result in results:
        for name, kind in result["allowed"].items():
            if name in refused:
                conflicts.add(name)
            else:
                allowed.setdefault(name, kind)
    groups: dict[str, dict[str, list[str]]] = {"classes": {}, "ufuncs": {}, "cython": {}}
    reviewed: dict[str, str] = {}
    group_of = {"c": "classes", "u": "ufuncs", "p": "cython"}
    for qualname, kind in sorted(allowed.items()):
        module, _, name = qualname.rpartition(".")
        if kind.startswith("r:"):
            reviewed[qualname] = kind[2:]
        else:
            groups[group_of[kind]].setdefault(module, []).append(name)
    return {
        "generated_by": "python -m skdeploy.tooling.pickle_allowlist_gen (do not edit by hand)",
        "environments": sorted(
            (result["environment"] for result in results), key=lambda e: json.dumps(e)
        ),
        **{g: {m: " ".join(n) for m, n in sorted(v.items())} for g, v in groups.items()},
        "reviewed": reviewed,
        "refused_elsewhere": sorted(conflicts),
    }


def dumps(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=1, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--python", action="append", default=[], help="another environment")
    parser.add_argument("--output", type=Path, default=DATA_FILE)
    args = parser.parse_args(argv)
    spec = review_spec()
    results = [collect_in(sys.executable, spec)]
    results.extend(collect_in(python, spec) for python in args.python)
    args.output.write_text(dumps(merge(results)))
    for result in results:
        print(json.dumps(result["environment"]), len(result["allowed"]), "allowed")
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--collect"]:
        Path(sys.argv[2]).write_text(json.dumps(collect(json.load(sys.stdin))))
    else:
        sys.exit(main())
