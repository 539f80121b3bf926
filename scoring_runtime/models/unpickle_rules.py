"""What the restricted unpickler (unpickle.py) lets a model file name: the packages, the modules and classes closed
inside them, the standard types, and the named reconstruction functions. Kept apart so the rules read as a list."""

from __future__ import annotations

PACKAGES = frozenset({"sklearn", "numpy", "scipy", "pandas", "xgboost", "lightgbm"})
# Modules of those packages that read or write files, reach the network, evaluate expressions, load pickles again or
# build arrays from raw pointers. A prefix closes the module and everything under it.
CLOSED_MODULES = (
    *(
        f"numpy.{name}"
        for name in ("lib.npyio", "lib._npyio_impl", "lib._datasource", "lib.format", "lib._format_impl")
    ),
    *(f"numpy.{core}.{name}" for core in ("core", "_core") for name in ("memmap", "_internal")),
    *(f"numpy.{name}" for name in ("ctypeslib", "f2py", "distutils")),
    *(f"scipy.{name}" for name in ("io", "datasets", "misc", "_lib")),
    *(f"pandas.{name}" for name in ("io", "compat", "plotting", "util", "_config")),
    *(f"pandas.core.{name}" for name in ("computation", "interchange")),
    *(f"sklearn.{name}" for name in ("datasets", "externals", "utils._joblib", "utils.parallel")),
    *(f"xgboost.{name}" for name in ("tracker", "collective", "federated", "dask", "spark", "callback")),
    *(f"lightgbm.{name}" for name in ("dask", "callback")),
)
# `_cyutility` is Cython's shared runtime (its array, memoryview and Enum types), which scikit-learn, scipy and pandas
# ship from Cython 3.1 on: no model's class, and its array's constructor allocates raw memory of any size.
CLOSED_PARTS = frozenset({"tests", "testing", "_testing", "conftest", "_cyutility"})
# Classes whose constructors read files, by every name they are known under (numpy sets `__module__` to "numpy").
CLOSED_CLASSES = frozenset(
    {
        "numpy.memmap",
        "numpy.DataSource",
        "numpy.lib.npyio.NpzFile",
        "numpy.lib.npyio.DataSource",
        "xgboost.DMatrix",
        "xgboost.QuantileDMatrix",
        "xgboost.ExtMemQuantileDMatrix",
        "xgboost.core.DMatrix",
        "xgboost.core.QuantileDMatrix",
        "xgboost.core.ExtMemQuantileDMatrix",
        "xgboost.core._ProxyDMatrix",
        "lightgbm.Dataset",
        "lightgbm.basic.Dataset",
        "lightgbm.basic.Sequence",
    }
)
STDLIB_TYPES = frozenset(
    {
        *(f"builtins.{name}" for name in ("object", "bool", "int", "float", "complex", "str", "bytes", "bytearray")),
        *(f"builtins.{name}" for name in ("list", "tuple", "dict", "set", "frozenset", "slice", "range")),
        "collections.OrderedDict",
        "collections.defaultdict",
        "collections.Counter",
        "collections.deque",
        *(f"datetime.{name}" for name in ("date", "datetime", "time", "timedelta", "timezone")),
        "decimal.Decimal",
        "zoneinfo.ZoneInfo",
    }
)
# Reconstruction functions, found by pickling real models and data; each builds only the kind of value it is named for.
FUNCTIONS = frozenset(
    {
        "_codecs.encode",  # bytes in protocol 2: encode(str, "latin1")
        *(f"numpy.{core}.multiarray.{name}" for core in ("core", "_core") for name in ("_reconstruct", "scalar")),
        *(f"numpy.{core}.numeric._frombuffer" for core in ("core", "_core")),
        "numpy.ma.core._mareconstruct",
        "numpy.random._pickle.__bit_generator_ctor",
        "numpy.random._pickle.__generator_ctor",
        "numpy.random._pickle.__randomstate_ctor",
        "pandas.NA",
        "pandas._libs.missing.NA",
        "pandas._libs.internals._unpickle_block",
        "pandas._libs.tslibs.nattype._nat_unpickle",
        "pandas._libs.tslibs.nattype.__nat_unpickle",  # its name before pandas 3; returns the NaT singleton
        "pandas._libs.tslibs.timestamps._unpickle_timestamp",
        "pandas._libs.tslibs.timedeltas._timedelta_unpickle",
        "pandas.core.indexes.base._new_Index",
        "pandas.core.indexes.datetimes._new_DatetimeIndex",
        "pandas.core.indexes.interval._new_IntervalIndex",
        "pandas.core.indexes.period._new_PeriodIndex",
        "pandas.core.indexes.timedeltas._new_TimedeltaIndex",
        "sklearn.metrics._dist_metrics.newObj",
        "sklearn.neighbors._ball_tree.newObj",
        "sklearn.neighbors._kd_tree.newObj",
    }
)
UFUNC_MODULES = frozenset({"numpy", *(f"numpy.{core}._multiarray_umath" for core in ("core", "_core"))})
JOBLIB_ARRAY = "joblib.numpy_pickle.NumpyArrayWrapper"
