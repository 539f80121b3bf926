"""Unpickling a model file without trusting it: only the classes and reconstruction functions of the libraries a model
is made of may be named, and nothing the file names may read files, import code or forge memory.

The rules, checked on every global the stream names (pickle's `find_class`):
- a class (an actual `type`) from scikit-learn, numpy, scipy, pandas, xgboost or lightgbm, outside their I/O, testing
  and code-evaluating modules (`_CLOSED_MODULES`) and the classes whose constructors read files (`_CLOSED_CLASSES`);
- a few standard value types (`_STDLIB_TYPES`), numpy's ufuncs, and the reconstruction functions of `_FUNCTIONS`;
- Cython's generated `__pyx_unpickle_*` functions of those packages, which restore only their own type.

And on what the stream does with them: a numpy array class is never called with arguments (`ndarray(shape, object,
buffer)` reads pointers out of the file's bytes), and an object's state never sets a dunder attribute (such as
`__array_interface__`, which numpy follows to raw memory) nor the attributes of a class.

This is pickle's pure-Python unpickler (the C one cannot be told apart from REDUCE and BUILD): slower per object, but
a model's bulk is its arrays, which arrive as whole buffers.
"""

from __future__ import annotations

import _compat_pickle
import copyreg
import importlib
import pickle
from typing import Any, BinaryIO, ClassVar

_PACKAGES = frozenset({"sklearn", "numpy", "scipy", "pandas", "xgboost", "lightgbm"})
# Modules of those packages that read or write files, reach the network, evaluate expressions, load pickles again or
# build arrays from raw pointers. A prefix closes the module and everything under it.
_CLOSED_MODULES = (
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
_CLOSED_PARTS = frozenset({"tests", "testing", "_testing", "conftest"})
# Classes whose constructors read files, by every name they are known under (numpy sets `__module__` to "numpy").
_CLOSED_CLASSES = frozenset(
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
_STDLIB_TYPES = frozenset(
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
_FUNCTIONS = frozenset(
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
JOBLIB_ARRAY = "joblib.numpy_pickle.NumpyArrayWrapper"


class Refused(Exception):
    """The stream asks for something a model file may not do; `what` says what, as a phrase after the file's name."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


def _refused_global(name: str) -> Refused:
    return Refused(f"refers to {name}, which a model file may not load")


class MissingGlobal(Exception):
    """The stream names a class or function of a library that is not installed, or not in this version of it."""


def _within(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == prefix or module.startswith(prefix + ".") for prefix in prefixes)


def _open_module(module: str) -> bool:
    """Whether classes of `module` may be named; decided before anything is imported."""
    parts = module.split(".")
    if parts[0] not in _PACKAGES or _within(module, _CLOSED_MODULES):
        return False
    return not any(part in _CLOSED_PARTS or part.startswith("__") for part in parts)


def _lookup(module: str, name: str) -> Any:
    try:
        found: Any = importlib.import_module(module)
        for part in name.split("."):
            found = getattr(found, part)
    except (ImportError, AttributeError) as exc:
        raise MissingGlobal(f"{module}.{name} cannot be imported ({exc})") from None
    return found


def _reconstructor(cls: Any, base: Any, state: Any) -> Any:
    # copyreg's helper of protocols 0 and 1 calls `base.__init__(obj, state)`: only a builtin base may be called.
    if base is not object and f"builtins.{getattr(base, '__name__', '?')}" not in _STDLIB_TYPES:
        raise _refused_global(f"copyreg._reconstructor with base {getattr(base, '__qualname__', base)!r}")
    return copyreg._reconstructor(cls, base, state)  # type: ignore[attr-defined]


def _getattr(owner: Any, name: str) -> Any:
    # Time zones pickle as getattr(ZoneInfo, "_unpickle"); no other attribute is looked up.
    from zoneinfo import ZoneInfo

    if owner is ZoneInfo and name == "_unpickle":
        return ZoneInfo._unpickle  # type: ignore[attr-defined]
    raise _refused_global(f"builtins.getattr({getattr(owner, '__qualname__', '?')}, {name!r})")


_GUARDED = {"copyreg._reconstructor": _reconstructor, "builtins.getattr": _getattr}


def allowed_global(module: str, name: str) -> Any:
    """The class or function `module.name` if a model file may name it; Refused otherwise."""
    qualified = f"{module}.{name}"
    if qualified in _GUARDED:
        return _GUARDED[qualified]
    if qualified in _STDLIB_TYPES or qualified in _FUNCTIONS:
        return _lookup(module, name)
    pyx = name.startswith("__pyx_unpickle_") and "." not in name
    if not _open_module(module) or (not pyx and any(part.startswith("__") for part in name.split("."))):
        raise _refused_global(qualified)
    found = _lookup(module, name)
    if isinstance(found, type):
        own = f"{found.__module__}.{found.__qualname__}"
        if qualified in _CLOSED_CLASSES or own in _CLOSED_CLASSES or not _open_module(found.__module__):
            raise _refused_global(qualified)
        import numpy as np

        if issubclass(found, np.memmap):
            raise _refused_global(qualified)
        return found
    if pyx:
        return found
    import numpy as np

    if isinstance(found, np.ufunc) and module == "numpy":  # np.log1p in a FunctionTransformer: pure arithmetic
        return found
    raise _refused_global(qualified)


def _is_array_class(value: Any) -> bool:
    import numpy as np

    return isinstance(value, type) and issubclass(value, np.ndarray)


def _check_state_keys(keys: Any, target: Any) -> None:
    for key in keys:
        if isinstance(key, str) and key.startswith("__") and key.endswith("__"):
            raise Refused(f"sets {key} on a {type(target).__qualname__}, which a model file may not do")


class RestrictedUnpickler(pickle._Unpickler):
    """Unpickles a stream under the rules of this module; Refused on the first thing it may not do."""

    # Attributes of pickle's Python unpickler that typeshed does not declare.
    stack: list[Any]
    proto: int
    fix_imports: bool
    dispatch: ClassVar[dict[int, Any]] = pickle._Unpickler.dispatch.copy()

    def __init__(self, file: BinaryIO) -> None:
        pickle._Unpickler.__init__(self, file)
        self._named: set[int] = set()  # ids of what find_class returned

    def find_class(self, module: str, name: str) -> Any:
        if self.proto < 3 and self.fix_imports:  # Python 2 names, as pickle maps them
            if (module, name) in _compat_pickle.NAME_MAPPING:
                module, name = _compat_pickle.NAME_MAPPING[(module, name)]
            module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        found = self.joblib_array() if f"{module}.{name}" == JOBLIB_ARRAY else allowed_global(module, name)
        self._named.add(id(found))
        return found

    def joblib_array(self) -> Any:
        """The class that stands for an array stored after the pickle stream: a plain pickle holds none."""
        raise Refused(f"refers to {JOBLIB_ARRAY}, which only a joblib file holds")

    def _load_reduce(self) -> None:
        func, args = self.stack[-2], self.stack[-1]
        if _is_array_class(func) and args:
            raise Refused(f"calls {func.__module__}.{func.__qualname__} with arguments, which a model file may not do")
        pickle._Unpickler.load_reduce(self)  # type: ignore[attr-defined]

    def _load_newobj(self) -> None:
        if _is_array_class(self.stack[-2]) and self.stack[-1]:
            raise Refused("creates a numpy array from arguments, which a model file may not do")
        pickle._Unpickler.load_newobj(self)  # type: ignore[attr-defined]

    def _load_newobj_ex(self) -> None:
        if _is_array_class(self.stack[-3]) and (self.stack[-2] or self.stack[-1]):
            raise Refused("creates a numpy array from arguments, which a model file may not do")
        pickle._Unpickler.load_newobj_ex(self)  # type: ignore[attr-defined]

    def _load_build(self) -> None:
        state, target = self.stack[-1], self.stack[-2]
        if id(target) in self._named:  # a class, function or singleton of a library: shared by the whole process
            name = getattr(target, "__qualname__", type(target).__qualname__)
            raise Refused(f"sets the state of {name}, which a model file may not do")
        # A dict state (or the dict and slots of a pair) becomes attributes, by default and in most __setstate__.
        for part in state if isinstance(state, tuple) else (state,):
            if isinstance(part, dict):
                _check_state_keys(part, target)
        pickle._Unpickler.load_build(self)  # type: ignore[attr-defined]

    def _load_setitem(self) -> None:
        if type(self.stack[-3]) is not dict:  # a dict subclass may serve its items as attributes (sklearn's Bunch)
            _check_state_keys((self.stack[-2],), self.stack[-3])
        pickle._Unpickler.load_setitem(self)  # type: ignore[attr-defined]

    def _load_setitems(self) -> None:
        mark = self.metastack[-1] if self.metastack else []  # type: ignore[attr-defined]
        target = mark[-1] if mark else None
        if target is not None and type(target) is not dict:
            _check_state_keys(self.stack[::2], target)
        pickle._Unpickler.load_setitems(self)  # type: ignore[attr-defined]

    dispatch[pickle.REDUCE[0]] = _load_reduce
    dispatch[pickle.NEWOBJ[0]] = _load_newobj
    dispatch[pickle.NEWOBJ_EX[0]] = _load_newobj_ex
    dispatch[pickle.BUILD[0]] = _load_build
    dispatch[pickle.SETITEM[0]] = _load_setitem
    dispatch[pickle.SETITEMS[0]] = _load_setitems


def restricted_load(file: BinaryIO) -> Any:
    """The object of a plain pickle stream, unpickled under this module's rules."""
    return RestrictedUnpickler(file).load()
