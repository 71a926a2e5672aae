"""Which globals a pickle may make the unpickler import: the allow-list and its reasons.

:func:`global_refusal` is the whole policy: the inspection (:mod:`skdeploy.core.pickle.inspect`)
calls it for every global a pickle names and refuses the file when it answers a reason.

A global is allowed by the object it names, under every name that reaches that object: the
generated data (``allowlist.json``, from :mod:`skdeploy.tooling.pickle_allowlist_gen`) lists each
``module.name`` that, in the environments it was generated from, is bound to a class of
scikit-learn, numpy, scipy or pandas (less the classes refused in
:mod:`skdeploy.core.pickle.allowlist`), a numpy ufunc, a Cython ``__pyx_unpickle_*`` helper, or one
of the reviewed functions and builtins of :data:`skdeploy.core.pickle.allowlist.REVIEWED`. Every
other name of those libraries, or of the standard library and joblib, is refused, even when it lives
in an allowed library (``numpy._core._methods._dump`` writes files). A name the data does not
know, e.g. from a library version none of its environments had, is refused and the message says
so; it is never guessed from its module.

Classes of modules the caller ships itself (``trusted``: module -> class names, from
``skdeploy:trustedModules``, see :mod:`skdeploy.core.trusted`) are allowed by name; a trusted
module's other names (functions, imported names) stay refused, and trust cannot unlock the known
gadgets or names of the libraries or of the standard library.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Collection, Mapping
from fnmatch import fnmatchcase
from functools import cache
from pathlib import Path

from skdeploy.core.pickle.allowlist import LIBRARIES, REVIEWED

__all__ = ["ALLOWLIST_FILE", "allowed_globals", "global_refusal", "in_package"]

#: The generated data: allowed names only, grouped by kind and module.
ALLOWLIST_FILE = Path(__file__).with_name("allowlist.json")

_OLD_JOBLIB_WRAPPERS = frozenset(
    {
        ("joblib.numpy_pickle", "NDArrayWrapper"),
        ("joblib.numpy_pickle", "ZNDArrayWrapper"),
        ("joblib.numpy_pickle_compat", "NDArrayWrapper"),
        ("joblib.numpy_pickle_compat", "ZNDArrayWrapper"),
    }
)

_FILES = "reads or writes files"
_CODE = "runs code (tests, compilers, eval)"
_MEMORY = "builds arrays over arbitrary memory addresses"
_IMPORT = "imports modules named by string"
_NESTED = "unpickles nested data that this inspection never sees"
_PROCESSES = "starts processes"

#: Why some well-known names of the allowed libraries are refused: only to explain a refusal,
#: never to allow anything (the generated data does that). ``fnmatch`` patterns over
#: ``module.name``; a pattern also covers everything below it.
_KNOWN_DANGERS: tuple[tuple[str, str], ...] = (
    ("numpy.testing", _CODE),
    ("numpy.*tests", _CODE),
    ("numpy.*test", _CODE),
    ("numpy._pytesttester", _CODE),
    ("numpy.f2py", _CODE),
    ("numpy.distutils", _CODE),
    ("numpy.ctypeslib", _MEMORY),
    ("numpy.*stride_tricks*", _MEMORY),
    ("numpy.*as_strided", _MEMORY),
    ("numpy.*_internal", _MEMORY),
    ("numpy.*_dump", "pickles an array into a file it opens by name (writes files)"),
    ("numpy.*_dumps", "pickles an array"),
    ("numpy.*npyio*", _FILES),
    ("numpy.lib*format*", _FILES),
    ("numpy.*DataSource", "downloads URLs and reads files, and deletes its directory"),
    ("numpy.lib._datasource", "downloads URLs and reads files, and deletes its directory"),
    ("numpy.*add_newdoc*", _IMPORT),
    ("numpy.lib.utils", _IMPORT),
    ("numpy.lib._utils_impl", _IMPORT),
    ("numpy.*lookfor", _IMPORT),
    ("numpy.*info", _IMPORT + " and prints them"),
    ("numpy.compat", "loads Python source files and opens files (npy_load_module, open_latin1)"),
    ("numpy.*load", _FILES + " (and unpickles with allow_pickle)"),
    ("numpy.*loadtxt", _FILES),
    ("numpy.*genfromtxt", _FILES),
    ("numpy.*fromregex", _FILES),
    ("numpy.*fromfile", _FILES),
    ("numpy.*recfromcsv", _FILES),
    ("numpy.*recfromtxt", _FILES),
    ("numpy.*openfile", _FILES),
    ("numpy.*fromtextfile", _FILES),
    ("numpy.*save", _FILES),
    ("numpy.*savez", _FILES),
    ("numpy.*savez_compressed", _FILES),
    ("numpy.*savetxt", _FILES),
    ("numpy.*memmap", "creates or overwrites files when called"),
    ("sklearn.utils._testing", _CODE),
    ("sklearn.utils._mocking", _CODE),
    ("sklearn.utils.estimator_checks", _CODE),
    ("sklearn.*tests", _CODE),
    ("sklearn.conftest", _CODE),
    ("sklearn._build_utils", _CODE),
    ("sklearn.*export_graphviz", "writes files"),
    ("sklearn.datasets", "downloads data and reads files"),
    ("sklearn.externals", "vendored third-party code outside scikit-learn's API"),
    ("sklearn.utils._joblib", "re-exports joblib.load, which " + _NESTED),
    ("sklearn.utils.parallel", _PROCESSES),
    ("sklearn.*Parallel", _PROCESSES),
    ("sklearn.*Memory", "caches function results in files"),
    ("sklearn.utils.discovery", "imports every scikit-learn module, tests included"),
    ("sklearn.*show_versions", "inspects the installation"),
    ("sklearn._config", "changes scikit-learn's global configuration"),
    ("sklearn.set_config", "changes scikit-learn's global configuration"),
    ("sklearn.config_context", "changes scikit-learn's global configuration"),
    ("scipy.io", _FILES),
    ("scipy.*save_npz", _FILES),
    ("scipy.*load_npz", _FILES),
    ("scipy.datasets", "downloads data and reads files"),
    ("scipy._lib", "process pools (MapWrapper), raw callbacks (LowLevelCallable), test tools"),
    ("scipy.LowLevelCallable", _MEMORY),
    ("scipy.*ODR", "deletes the files it is given when constructed with overwrite=True"),
    ("scipy.*DifferentialEvolutionSolver", _PROCESSES + " (workers)"),
    ("scipy.*SHGO", _PROCESSES + " (workers)"),
    ("scipy.optimize._shgo_lib", _PROCESSES + " (workers)"),
    ("scipy.*tests", _CODE),
    ("scipy.*test", _CODE),
    ("pandas.io", _FILES),
    ("pandas.*read_*", _FILES),
    ("pandas.*to_pickle", _FILES),
    ("pandas.HDFStore", _FILES),
    ("pandas.ExcelWriter", _FILES),
    ("pandas.ExcelFile", _FILES),
    ("pandas.eval", "evaluates expressions"),
    ("pandas.core.computation", "evaluates expressions"),
    ("pandas.compat", _IMPORT),
    ("pandas.plotting", _IMPORT + " (plotting backends)"),
    ("pandas._config", "changes pandas options, some of which import modules"),
    ("pandas.*set_option", "changes pandas options, some of which import modules"),
    ("pandas.*option_context", "changes pandas options, some of which import modules"),
    ("pandas.util", _CODE),
    ("pandas._testing", _CODE),
    ("pandas.testing", _CODE),
    ("pandas.*tests", _CODE),
    ("pandas.test", _CODE),
)

_SHELL = "runs shell commands and touches files"
_ATTRIBUTES = "reaches or changes any attribute of any object (getattr(os, 'system'))"

#: Classic gadgets outside the allowed packages: refused with a reason even when a caller
#: allows extra modules, because no model needs them.
_GADGETS: tuple[tuple[str, str], ...] = (
    ("os", _SHELL),
    ("posix", _SHELL),
    ("nt", _SHELL),
    ("pty", _SHELL),
    ("subprocess", "starts processes"),
    ("multiprocessing", "starts processes"),
    ("concurrent", "starts processes or threads"),
    ("asyncio", "starts processes or threads"),
    ("builtins.eval", "executes arbitrary Python code"),
    ("builtins.exec", "executes arbitrary Python code"),
    ("builtins.compile", "compiles arbitrary Python code"),
    ("builtins.getattr", _ATTRIBUTES),
    ("builtins.setattr", _ATTRIBUTES),
    ("builtins.delattr", _ATTRIBUTES),
    ("builtins.vars", _ATTRIBUTES),
    ("builtins.globals", _ATTRIBUTES),
    ("builtins.locals", _ATTRIBUTES),
    ("operator", _ATTRIBUTES + " through attrgetter and methodcaller"),
    ("builtins.__import__", "imports any module"),
    ("importlib", "imports any module"),
    ("pkgutil", "imports any module"),
    ("runpy", "runs any module"),
    ("code", "runs Python source"),
    ("codeop", "compiles Python source"),
    ("timeit", "runs Python source"),
    ("profile", "runs Python source"),
    ("cProfile", "runs Python source"),
    ("trace", "runs Python source"),
    ("doctest", "runs Python source"),
    ("pdb", "runs Python source"),
    ("builtins.breakpoint", "starts a debugger"),
    ("builtins.input", "waits for a terminal"),
    ("builtins.open", _FILES),
    ("io", _FILES),
    ("_io", _FILES),
    ("pathlib", _FILES),
    ("shutil", _FILES),
    ("tempfile", _FILES),
    ("pickle", _NESTED),
    ("_pickle", _NESTED),
    ("marshal", _NESTED),
    ("shelve", _NESTED),
    ("dill", _NESTED),
    ("cloudpickle", _NESTED),
    (
        "joblib",
        "only joblib.numpy_pickle.NumpyArrayWrapper is needed to load a model; other "
        "joblib names (load, Memory, externals.cloudpickle) unpickle or run code",
    ),
    ("types", "builds code objects and functions"),
    ("ctypes", "calls native code"),
    ("_ctypes", "calls native code"),
    ("sys", "changes the interpreter (sys.modules, sys.path)"),
    ("socket", "opens network connections"),
    ("urllib", "opens network connections"),
    ("http", "opens network connections"),
    ("requests", "opens network connections"),
    ("webbrowser", "opens a browser"),
)

_MAIN_MODULES = frozenset({"__main__", "__mp_main__"})


def _matches(qualname: str, pattern: str) -> bool:
    return fnmatchcase(qualname, pattern) or fnmatchcase(qualname, pattern + ".*")


def in_package(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _is_dunder(name: str) -> bool:
    return len(name) > 4 and name.startswith("__") and name.endswith("__")


@cache
def allowed_globals() -> dict[str, str]:
    """Every allowed ``module.name`` and why: ``class``, ``ufunc``, ``cython`` or a reviewed key."""
    data = json.loads(ALLOWLIST_FILE.read_text(encoding="utf-8"))
    allowed: dict[str, str] = dict(data["reviewed"])
    for group, kind in (("classes", "class"), ("ufuncs", "ufunc"), ("cython", "cython")):
        for module, names in data[group].items():
            allowed.update((f"{module}.{name}", kind) for name in names.split())
    return allowed


@cache
def _covered_versions() -> str:
    data = json.loads(ALLOWLIST_FILE.read_text(encoding="utf-8"))
    versions = sorted({env["sklearn"] for env in data["environments"]}, key=_version_key)
    return ", ".join(versions)


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) if part.isdigit() else 0 for part in version.split("."))


#: Top-level modules whose names only the generated data can allow.
_DATA_DECIDES = frozenset(
    {*LIBRARIES, "joblib", *sys.stdlib_module_names, *(key.split(".")[0] for key in REVIEWED)}
)


def _library_refusal(qualname: str) -> str:
    hint = next((reason for pattern, reason in _KNOWN_DANGERS if _matches(qualname, pattern)), "")
    return (
        (f"{hint}: " if hint else "")
        + "not a class, ufunc or reviewed function of scikit-learn, numpy, scipy or pandas in the "
        f"allow-list generated from scikit-learn {_covered_versions()} environments (a name from "
        "another version is refused, not guessed; see skdeploy/tooling/pickle_allowlist_gen.py)"
    )


def global_refusal(
    module: str, name: str, trusted: Mapping[str, Collection[str]] | None = None
) -> str | None:
    """Why the unpickler must not import ``module.name``, or ``None`` if it may.

    ``trusted`` maps modules the caller ships itself (e.g. a module in the model's ``code/``
    directory that defines a custom transformer) to the classes defined at their top level:
    those classes are allowed, the modules' other names are not. The known gadgets, the
    libraries' and the standard library's names, ``__main__``, attribute paths and special names
    stay refused whatever is trusted.
    """
    qualname = f"{module}.{name}"
    if module in _MAIN_MODULES:
        return (
            f"the class or function {name} was defined in the training script (__main__); "
            "the container's unpickler looks for it in its own __main__ and fails. Define it in "
            "an importable module shipped with the model's code (a .py file or package in the "
            "handler folder) instead, and list that module in skdeploy:trustedModules"
        )
    if not module or not all(part.isidentifier() for part in module.split(".")):
        return "not a valid module name"
    if "." in name:
        return (
            "an attribute path: the unpickler would walk it attribute by attribute, which reaches "
            "methods and internals of allowed classes; models only need module-level names"
        )
    if not name.isidentifier():
        return "not a valid name"
    kind = allowed_globals().get(qualname)
    if _is_dunder(name) and kind not in REVIEWED:
        return (
            "a special attribute: reaching module or class internals (__builtins__, __dict__) is "
            "how exploits escape an allow-list"
        )
    if kind is not None:
        return None
    if (module, name) in _OLD_JOBLIB_WRAPPERS:
        return (
            "joblib < 0.10 stored arrays in separate .npy files next to the pickle; re-save the "
            "model with a current joblib"
        )
    for pattern, reason in _GADGETS:
        if _matches(qualname, pattern):
            return reason
    if module.split(".")[0] in _DATA_DECIDES:
        return _library_refusal(qualname)
    if trusted and module in trusted:
        if name in trusted[module]:
            return None
        return (
            f"{module} is a trusted module, but {name} is not a class defined at its top level: "
            "skdeploy:trustedModules admits classes only (a function or an imported name is how "
            "a pickle runs code)"
        )
    return (
        "not on the allow-list (classes of scikit-learn, numpy, scipy and pandas, numpy ufuncs "
        "and a few reviewed functions and data-only builtins): the container may not be able to "
        "import it, and an unknown callable can do anything when the unpickler calls it"
    )
