"""The reviewed part of the pickle allow-list: what a human decided, with one reason each.

:mod:`skdeploy.core.pickle.policy` allows a global only if the generated data
(``allowlist.json``, written by :mod:`skdeploy.tooling.pickle_allowlist_gen` from real
environments) says the name resolves there to an allowed object. Which objects are allowed is
decided here:

- a class defined in one of :data:`LIBRARIES` (its constructor, ``__new__`` and ``__setstate__``
  are what unpickling calls), unless it is defined in a module of :data:`DENIED_CLASS_MODULES`,
  is (or derives from) one of :data:`DENIED_CLASSES`, or derives from a class of a module in
  :data:`DENIED_BASE_MODULES`;
- a numpy ufunc (pure arithmetic on its arguments);
- a Cython-generated ``__pyx_unpickle_<Class>`` of those libraries (it only calls
  ``Class.__new__`` and fills the C fields from the state);
- an object of :data:`REVIEWED`, each reviewed by hand: the reconstructors real pickles use,
  data-only builtins, and a few pure scoring functions users pass to estimators.

Anything else a library module holds (every other function, modules, instances) is refused.
"""

from __future__ import annotations

#: Libraries whose classes may be unpickled: the container ships them all.
LIBRARIES = ("sklearn", "numpy", "scipy", "pandas")

#: Module names (dot-separated parts) the generator never imports or records: tests and
#: build machinery, which no model refers to and which run code on import.
SKIPPED_MODULE_PARTS = (
    "tests",
    "test",
    "testing",
    "_testing",
    "conftest",
    "distutils",
    "f2py",
    "_build_utils",
    "_pyinstaller",
    "setup",
)

_VALUE = "constructs a plain value from its arguments"
_CONTAINER = "a container of other checked values"
_RECONSTRUCT = "real pickles call it to rebuild "

#: Reviewed objects: ``name -> (reason, paths it is defined at)``. The generator resolves each
#: path that exists in an environment and allows every name bound to the same object.
REVIEWED: dict[str, tuple[str, tuple[str, ...]]] = {
    **{
        f"builtins.{name}": (_VALUE, (f"builtins.{name}",))
        for name in (
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
        )
    },
    "builtins.Ellipsis": ("a singleton", ("builtins.Ellipsis",)),
    "builtins.NotImplemented": ("a singleton", ("builtins.NotImplemented",)),
    "copyreg._reconstructor": (
        "base.__new__(cls) and base.__init__(obj, state) for checked classes (protocols 0, 1)",
        ("copyreg._reconstructor",),
    ),
    "copyreg.__newobj__": ("cls.__new__(cls, *args) for a checked cls", ("copyreg.__newobj__",)),
    "copyreg.__newobj_ex__": (
        "cls.__new__(cls, *args, **kwargs) for a checked cls",
        ("copyreg.__newobj_ex__",),
    ),
    "_codecs.encode": (
        "protocol 2 writes bytes as _codecs.encode(text, 'latin1'); codec names cannot hold dots",
        ("_codecs.encode",),
    ),
    "functools.partial": (
        "binds arguments to another callable, itself a checked value",
        ("functools.partial",),
    ),
    "collections.OrderedDict": (_CONTAINER, ("collections.OrderedDict",)),
    "collections.defaultdict": (
        _CONTAINER + "; its factory is itself checked",
        ("collections.defaultdict",),
    ),
    "collections.deque": (_CONTAINER, ("collections.deque",)),
    "collections.Counter": (_CONTAINER, ("collections.Counter",)),
    "joblib.numpy_pickle.NumpyArrayWrapper": (
        "joblib's placeholder for an array (shape, dtype, order); the inspector reads its bytes",
        ("joblib.numpy_pickle.NumpyArrayWrapper",),
    ),
    "numpy.core.multiarray._reconstruct": (
        _RECONSTRUCT + "an ndarray: ndarray.__new__(checked subtype, shape, dtype)",
        ("numpy.core.multiarray._reconstruct", "numpy._core.multiarray._reconstruct"),
    ),
    "numpy.core.multiarray.scalar": (
        _RECONSTRUCT + "a numpy scalar from a dtype and its bytes",
        ("numpy.core.multiarray.scalar", "numpy._core.multiarray.scalar"),
    ),
    "numpy.core.numeric._frombuffer": (
        _RECONSTRUCT + "an array from bytes in the pickle (protocol 5)",
        ("numpy.core.numeric._frombuffer", "numpy._core.numeric._frombuffer"),
    ),
    "numpy.core._ufunc_reconstruct": (
        "numpy 1 pickles ufuncs with it; the inspector checks the (module, name) it imports as "
        "a global of its own",
        ("numpy.core._ufunc_reconstruct", "numpy._core._ufunc_reconstruct"),
    ),
    "numpy.ma.core._mareconstruct": (
        _RECONSTRUCT + "a masked array from checked classes, a shape and a dtype",
        ("numpy.ma.core._mareconstruct",),
    ),
    "numpy.random._pickle.__randomstate_ctor": (
        _RECONSTRUCT + "a RandomState; bit generators are looked up in a fixed table",
        ("numpy.random._pickle.__randomstate_ctor",),
    ),
    "numpy.random._pickle.__bit_generator_ctor": (
        _RECONSTRUCT + "a bit generator from a fixed table (or a checked class)",
        ("numpy.random._pickle.__bit_generator_ctor",),
    ),
    "numpy.random._pickle.__generator_ctor": (
        _RECONSTRUCT + "a Generator around a bit generator from a fixed table",
        ("numpy.random._pickle.__generator_ctor",),
    ),
    "pandas._libs.internals._unpickle_block": (
        _RECONSTRUCT + "a DataFrame block from an array and a placement",
        ("pandas._libs.internals._unpickle_block",),
    ),
    "pandas.core.internals.blocks.new_block": (
        _RECONSTRUCT + "a DataFrame block (pandas 1.x pickles)",
        ("pandas.core.internals.blocks.new_block",),
    ),
    "pandas.core.indexes.base._new_Index": (
        _RECONSTRUCT + "an Index: cls.__new__ or cls._simple_new for a checked class",
        ("pandas.core.indexes.base._new_Index",),
    ),
    "pandas.core.indexes.period._new_PeriodIndex": (
        _RECONSTRUCT + "a PeriodIndex",
        ("pandas.core.indexes.period._new_PeriodIndex",),
    ),
    "pandas.core.indexes.datetimes._new_DatetimeIndex": (
        _RECONSTRUCT + "a DatetimeIndex",
        ("pandas.core.indexes.datetimes._new_DatetimeIndex",),
    ),
    "pandas._libs.tslibs.timestamps._unpickle_timestamp": (
        _RECONSTRUCT + "a Timestamp from integers and a tz",
        ("pandas._libs.tslibs.timestamps._unpickle_timestamp",),
    ),
    "pandas._libs.tslibs.timedeltas._timedelta_unpickle": (
        _RECONSTRUCT + "a Timedelta from integers",
        ("pandas._libs.tslibs.timedeltas._timedelta_unpickle",),
    ),
    "pandas._libs.tslibs.nattype.__nat_unpickle": (
        "returns the NaT singleton",
        ("pandas._libs.tslibs.nattype.__nat_unpickle",),
    ),
    "pandas._libs.tslibs.nattype._nat_unpickle": (
        "returns the NaT singleton (pandas 1.x)",
        ("pandas._libs.tslibs.nattype._nat_unpickle",),
    ),
    "pandas.core.indexes.interval._new_IntervalIndex": (
        _RECONSTRUCT + "an IntervalIndex: cls.from_arrays for a checked class",
        ("pandas.core.indexes.interval._new_IntervalIndex",),
    ),
    "sklearn.metrics._dist_metrics.newObj": (
        _RECONSTRUCT + "a distance metric: obj.__new__(obj) for a checked class",
        (
            "sklearn.metrics._dist_metrics.newObj",
            "sklearn.neighbors._dist_metrics.newObj",
            "sklearn.neighbors._kd_tree.newObj",
            "sklearn.neighbors._ball_tree.newObj",
        ),
    ),
    "pytz._UTC": (
        "returns pytz's UTC singleton (pandas 1.x pickles UTC timestamps with it)",
        ("pytz._UTC",),
    ),
    **{
        f"datetime.{name}": (_VALUE + " (pandas time zones and offsets)", (f"datetime.{name}",))
        for name in ("date", "datetime", "time", "timedelta", "timezone")
    },
    "pandas._libs.tslibs.offsets._unpickle_offset": (
        _RECONSTRUCT + "a date offset",
        ("pandas._libs.tslibs.offsets._unpickle_offset",),
    ),
    "sklearn.feature_selection.f_classif": (
        "a pure scoring function users pass to SelectKBest",
        ("sklearn.feature_selection._univariate_selection.f_classif",),
    ),
    "sklearn.feature_selection.f_regression": (
        "a pure scoring function users pass to SelectKBest",
        ("sklearn.feature_selection._univariate_selection.f_regression",),
    ),
    "sklearn.feature_selection.f_oneway": (
        "a pure scoring function users pass to SelectKBest",
        ("sklearn.feature_selection._univariate_selection.f_oneway",),
    ),
    "sklearn.feature_selection.chi2": (
        "a pure scoring function users pass to SelectKBest",
        ("sklearn.feature_selection._univariate_selection.chi2",),
    ),
    "sklearn.feature_selection.r_regression": (
        "a pure scoring function users pass to SelectKBest",
        ("sklearn.feature_selection._univariate_selection.r_regression",),
    ),
}

REVIEWED["sklearn.metrics.get_scorer_names"] = (
    "the metric functions of scikit-learn's built-in scorers (accuracy_score, r2_score, ...), "
    "which fitted searches keep in scorer_: pure functions of arrays",
    (),
)

#: Modules whose classes are refused (dot-separated prefixes of the class's ``__module__``).
DENIED_CLASS_MODULES: dict[str, str] = {
    "numpy.lib.npyio": "reads or writes files",
    "numpy.lib._npyio_impl": "reads or writes files",
    "numpy.lib.format": "reads or writes files",
    "numpy.lib._format_impl": "reads or writes files",
    "numpy.lib._datasource": "downloads URLs and reads files",
    "numpy.lib._iotools": "helpers of the text-file readers",
    "numpy.lib.stride_tricks": "builds arrays over arbitrary memory addresses (DummyArray)",
    "numpy.lib._stride_tricks_impl": "builds arrays over arbitrary memory addresses (DummyArray)",
    "numpy.core._internal": "wraps raw memory addresses in ctypes objects",
    "numpy._core._internal": "wraps raw memory addresses in ctypes objects",
    "numpy.ctypeslib": "calls native code and reaches memory by address",
    "numpy.compat": "opens files and loads Python source",
    "numpy.lib.utils": "imports modules named by string",
    "numpy.lib._utils_impl": "imports modules named by string",
    "numpy._pytesttester": "runs tests",
    "sklearn.utils._testing": "runs code (test utilities)",
    "sklearn.utils._mocking": "test utilities",
    "sklearn.utils.estimator_checks": "runs code (test utilities)",
    "sklearn.datasets": "downloads data and reads files",
    "sklearn.externals": "vendored third-party code outside scikit-learn's API",
    "sklearn.utils.parallel": "starts worker processes (joblib.Parallel)",
    "sklearn.utils._show_versions": "inspects the installation",
    "sklearn._config": "changes scikit-learn's global configuration",
    "scipy.io": "reads or writes files",
    "scipy.optimize._shgo_lib": "starts a multiprocessing pool when constructed with workers",
    "scipy.special._precompute": "development scripts (process pools, mpmath)",
    "scipy.special._mptestutils": "test utilities",
    "scipy.special._testutils": "test utilities",
    "scipy.datasets": "downloads data and reads files",
    "scipy._lib": "process pools (MapWrapper), raw callbacks (LowLevelCallable), test tools",
    "pandas.io": "reads or writes files",
    "pandas.util": "test and version utilities",
    "pandas.compat": "imports modules named by string",
    "pandas.plotting": "imports plotting backends named by string",
    "pandas._config": "changes pandas options, some of which import modules",
    "pandas.core.config_init": "changes pandas options, some of which import modules",
    "pandas.core.computation": "evaluates expressions",
}

#: Classes refused wherever they are defined or re-exported (and their subclasses).
DENIED_CLASSES: dict[str, tuple[str, tuple[str, ...]]] = {
    "numpy.memmap": (
        "creates or overwrites a file when constructed",
        ("numpy.memmap", "numpy.core.memmap.memmap", "numpy._core.memmap.memmap"),
    ),
    "numpy.DataSource": (
        "downloads URLs and reads files",
        ("numpy.DataSource", "numpy.lib._datasource.DataSource"),
    ),
    "numpy.lib.npyio.NpzFile": (
        "opens a zip file and unpickles its members",
        ("numpy.lib.npyio.NpzFile", "numpy.lib._npyio_impl.NpzFile"),
    ),
    "scipy.optimize._differentialevolution.DifferentialEvolutionSolver": (
        "starts a multiprocessing pool when constructed with workers > 1",
        ("scipy.optimize._differentialevolution.DifferentialEvolutionSolver",),
    ),
    "scipy.odr.ODR": (
        "deletes the files named by rptfile and errfile when constructed with overwrite=True",
        ("scipy.odr._odrpack.ODR", "scipy.odr.odrpack.ODR", "scipy.odr.ODR"),
    ),
    "scipy.optimize._shgo.SHGO": (
        "starts a multiprocessing pool when constructed with workers > 1",
        ("scipy.optimize._shgo.SHGO",),
    ),
}

#: Classes deriving from a class of these modules are refused: their constructors or methods
#: open files, sockets, threads or processes, or reach memory by address.
DENIED_BASE_MODULES: dict[str, str] = {
    "joblib": "joblib's Parallel, Memory and loaders start processes or touch files",
    "io": "reads or writes files",
    "_io": "reads or writes files",
    "zipfile": "reads or writes files",
    "tarfile": "reads or writes files",
    "tempfile": "creates files",
    "mmap": "maps files into memory",
    "logging": "log handlers open files",
    "threading": "starts threads",
    "multiprocessing": "starts processes",
    "concurrent": "starts processes or threads",
    "subprocess": "starts processes",
    "socket": "opens network connections",
    "ctypes": "calls native code and reaches memory by address",
    "_ctypes": "calls native code and reaches memory by address",
    "threadpoolctl": "loads native libraries by path",
}
