"""Which globals a pickle may make the unpickler import: the allow-list and its reasons.

:func:`global_refusal` is the whole policy: the walker in :mod:`skdeploy.pickle_inspect` calls it
for every global a pickle names and refuses the file when it answers a reason.
"""

from __future__ import annotations

from collections.abc import Iterable
from fnmatch import fnmatchcase

__all__ = ["global_refusal", "in_package"]

_OLD_JOBLIB_WRAPPERS = frozenset(
    {
        ("joblib.numpy_pickle", "NDArrayWrapper"),
        ("joblib.numpy_pickle", "ZNDArrayWrapper"),
        ("joblib.numpy_pickle_compat", "NDArrayWrapper"),
        ("joblib.numpy_pickle_compat", "ZNDArrayWrapper"),
    }
)

# --------------------------------------------------------------------------------------------
# The allow-list. Each entry says why importing (and calling) it is harmless.

#: Packages allowed as a whole (less the deny-list below): the container ships them all.
_ALLOWED_PACKAGES: dict[str, str] = {
    "sklearn": "the estimators themselves",
    "numpy": "arrays, dtypes and scalars (numpy.core.multiarray._reconstruct, numpy.dtype, ...)",
    "scipy": "sparse matrices and distributions that estimators keep",
    "pandas": "DataFrames, Series or Index objects an estimator may hold",
}

_PLAIN_VALUES = "constructs a plain value from its arguments (protocols < 4 write sets, "
_PLAIN_VALUES += "frozensets, complex numbers, slices and bytearrays this way)"

#: Single globals outside those packages that models legitimately need.
_ALLOWED_GLOBALS: dict[str, str] = {
    "joblib.numpy_pickle.NumpyArrayWrapper": (
        "joblib's placeholder for an array: it holds shape, dtype and order only"
    ),
    **{
        f"builtins.{name}": _PLAIN_VALUES
        for name in [
            "object",
            "bool",
            "int",
            "float",
            "complex",
            "str",
            "bytes",
            "bytearray",
            "list",
            "tuple",
            "dict",
            "set",
            "frozenset",
            "slice",
            "range",
        ]
    },
    "builtins.Ellipsis": "a singleton",
    "builtins.NotImplemented": "a singleton",
    "copyreg._reconstructor": (
        "protocols 0 and 1 rebuild instances with base.__new__(cls); cls and base are "
        "themselves checked globals"
    ),
    "copyreg.__newobj__": "cls.__new__(cls, *args) for a checked cls (NEWOBJ before protocol 2)",
    "copyreg.__newobj_ex__": "cls.__new__(cls, *args, **kwargs) for a checked cls",
    "collections.OrderedDict": "a container",
    "collections.defaultdict": "a container; its factory is itself a checked global",
    "collections.deque": "a container",
    "collections.Counter": "a container",
    "_codecs.encode": (
        "protocol 2 has no bytes opcode, so Python 3 writes bytes as "
        "_codecs.encode(text, 'latin1'); it only looks codecs up in the stdlib's encodings"
    ),
    "functools.partial": (
        "binds arguments to another callable, which is itself a checked global; the "
        "REDUCE opcode could call that callable directly anyway"
    ),
}

_FILES = "reads or writes files"
_CODE = "runs code (tests, compilers, eval)"
_MEMORY = "builds arrays over arbitrary memory addresses"
_IMPORT = "imports modules named by string"
_NESTED = "unpickles nested data that this inspection never sees"

#: Known entry points to code, files, network or raw memory inside the allowed packages.
#: ``fnmatch`` patterns over ``module.name``; a pattern also covers everything below it.
_DENIED: tuple[tuple[str, str], ...] = (
    ("numpy.testing", _CODE),
    ("numpy.*tests", _CODE),
    ("numpy.test", _CODE),
    ("numpy.*.test", _CODE),
    ("numpy._pytesttester", _CODE),
    ("numpy.f2py", _CODE),
    ("numpy.distutils", _CODE),
    ("numpy.ctypeslib", _MEMORY),
    ("numpy.lib.stride_tricks", _MEMORY),
    ("numpy.lib._stride_tricks_impl", _MEMORY),
    ("numpy.*as_strided", _MEMORY),
    ("numpy.*_internal", _MEMORY),
    ("numpy.lib.npyio", _FILES),
    ("numpy.lib._npyio_impl", _FILES),
    ("numpy.lib.format", _FILES),
    ("numpy.lib._format_impl", _FILES),
    ("numpy.lib._datasource", "downloads URLs and reads files"),
    ("numpy.DataSource", "downloads URLs and reads files"),
    ("numpy.lib.utils", _IMPORT),
    ("numpy.*lookfor", _IMPORT),
    ("numpy.compat", "loads Python source files and opens files (npy_load_module, open_latin1)"),
    ("numpy.info", "imports and prints modules named by string"),
    ("numpy.lib._utils_impl", _IMPORT),
    ("numpy.*load", _FILES + " (and unpickles with allow_pickle)"),
    ("numpy.*loadtxt", _FILES),
    ("numpy.*genfromtxt", _FILES),
    ("numpy.*fromregex", _FILES),
    ("numpy.*fromfile", _FILES),
    ("numpy.*save", _FILES),
    ("numpy.*savez", _FILES),
    ("numpy.*savez_compressed", _FILES),
    ("numpy.*savetxt", _FILES),
    ("numpy.*memmap", "creates or overwrites files when called"),
    ("sklearn.utils._testing", _CODE),
    ("sklearn.utils.estimator_checks", _CODE),
    ("sklearn.*tests", _CODE),
    ("sklearn.conftest", _CODE),
    ("sklearn._build_utils", _CODE),
    ("sklearn.datasets", "downloads data and reads files"),
    ("sklearn.externals", "vendored third-party code outside scikit-learn's API"),
    ("sklearn.utils._joblib", "re-exports joblib.load, which " + _NESTED),
    ("sklearn.utils.discovery", "imports every scikit-learn module, tests included"),
    ("sklearn.utils._show_versions", "inspects the installation"),
    ("sklearn.show_versions", "inspects the installation"),
    ("sklearn._config", "changes scikit-learn's global configuration"),
    ("sklearn.set_config", "changes scikit-learn's global configuration"),
    ("sklearn.config_context", "changes scikit-learn's global configuration"),
    ("scipy.io", _FILES),
    ("scipy.datasets", "downloads data and reads files"),
    ("scipy._lib", "low-level callbacks (LowLevelCallable) and test utilities"),
    ("scipy.LowLevelCallable", _MEMORY),
    ("scipy.*tests", _CODE),
    ("scipy.test", _CODE),
    ("scipy.*.test", _CODE),
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


def global_refusal(module: str, name: str, extra_allowed_modules: Iterable[str] = ()) -> str | None:
    """Why the unpickler must not import ``module.name``, or ``None`` if it may.

    ``extra_allowed_modules`` adds packages the caller ships itself (e.g. a module in the model's
    ``code/`` directory that defines a custom transformer); the deny-list, the known gadgets,
    ``__main__``, attribute paths and special names stay refused.
    """
    qualname = f"{module}.{name}"
    if module in _MAIN_MODULES:
        return (
            f"the class or function {name} was defined in the training script (__main__); "
            "the container's unpickler looks for it in its own __main__ and fails. Define it in "
            "an importable module shipped with the model's code instead"
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
    if _is_dunder(name) and qualname not in _ALLOWED_GLOBALS:
        return (
            "a special attribute: reaching module or class internals (__builtins__, __dict__) is "
            "how exploits escape an allow-list"
        )
    for pattern, reason in _DENIED:
        if _matches(qualname, pattern):
            return reason
    if qualname in _ALLOWED_GLOBALS:
        return None
    if (module, name) in _OLD_JOBLIB_WRAPPERS:
        return (
            "joblib < 0.10 stored arrays in separate .npy files next to the pickle; re-save the "
            "model with a current joblib"
        )
    for pattern, reason in _GADGETS:
        if _matches(qualname, pattern):
            return reason
    allowed = (*_ALLOWED_PACKAGES, *extra_allowed_modules)
    if any(in_package(module, package) for package in allowed):
        return None
    return (
        "not on the allow-list (scikit-learn, numpy, scipy, pandas and a few data-only builtins): "
        "the container may not be able to import it, and an unknown callable can do anything "
        "when the unpickler calls it"
    )
