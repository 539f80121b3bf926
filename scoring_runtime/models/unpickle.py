"""Unpickling a model file without trusting it: only the classes and reconstruction functions of the libraries a model
is made of may be named, and nothing the file names may read files, import code or forge memory.

The rules, checked on every global the stream names (pickle's `find_class`):
- a class (an actual `type`) from scikit-learn, numpy, scipy, pandas, xgboost or lightgbm, outside their I/O, testing
  and code-evaluating modules (`_CLOSED_MODULES`) and the classes whose constructors read files (`_CLOSED_CLASSES`);
- a few standard value types (`_STDLIB_TYPES`), numpy's ufuncs, and the reconstruction functions of `_FUNCTIONS`;
- Cython's generated `__pyx_unpickle_*` functions of those packages, which restore only their own type.

A bare module name (no dot) stands for a module of those packages only where the process already holds it under that
name as an alias of the package's own module (`_alias_of`): scikit-learn 1.7's loss classes pickle as `_loss.*`.

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
import os
import pickle
import sys
from typing import Any, BinaryIO, ClassVar

from scoring_runtime.models.unpickle_rules import (
    CLOSED_CLASSES as _CLOSED_CLASSES,
    CLOSED_MODULES as _CLOSED_MODULES,
    CLOSED_PARTS as _CLOSED_PARTS,
    FUNCTIONS as _FUNCTIONS,
    JOBLIB_ARRAY,
    PACKAGES as _PACKAGES,
    STDLIB_TYPES as _STDLIB_TYPES,
    UFUNC_MODULES as _UFUNC_MODULES,
)


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


def _alias_of(module: str) -> str:
    """The real name of `module` when it is a bare alias of a module of `_PACKAGES`; `module` itself otherwise.

    scikit-learn 1.7's `sklearn._loss._loss` (Cython 3.1) gives its classes the bare `__module__` "_loss", and its
    import enters it in sys.modules under "_loss" as well: pickle writes `_loss.CyHalfSquaredError` and finds it again
    through that entry. The alias counts only when it is that very module object: already imported (nothing is
    imported by a bare name, which could find any `_loss` on sys.path), held by sys.modules under the dotted name it
    gives as its `__name__` too, and loaded from a file inside that package."""
    if "." in module or module in _PACKAGES:
        return module
    loaded = sys.modules.get(module)
    real = getattr(loaded, "__name__", None)
    if loaded is None or not isinstance(real, str) or "." not in real or sys.modules.get(real) is not loaded:
        return module
    package = sys.modules.get(real.split(".")[0])
    file = getattr(loaded, "__file__", None)
    roots = getattr(package, "__path__", None) if real.split(".")[0] in _PACKAGES else None
    if not isinstance(file, str) or roots is None:
        return module
    where = os.path.realpath(file)
    inside = any(os.path.commonpath([where, os.path.realpath(root)]) == os.path.realpath(root) for root in roots)
    return real if inside else module


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
    real = _alias_of(module)
    if real != module:  # every rule below applies to the module's real name
        return allowed_global(real, name)
    pyx = name.startswith("__pyx_unpickle_") and "." not in name
    if not _open_module(module) or (not pyx and any(part.startswith("__") for part in name.split("."))):
        raise _refused_global(qualified)
    found = _lookup(module, name)
    if isinstance(found, type):
        own = f"{found.__module__}.{found.__qualname__}"
        if qualified in _CLOSED_CLASSES or own in _CLOSED_CLASSES or not _open_module(_alias_of(found.__module__)):
            raise _refused_global(qualified)
        import numpy as np

        if issubclass(found, np.memmap):
            raise _refused_global(qualified)
        return found
    if pyx:
        return found
    import numpy as np

    # np.log1p in a FunctionTransformer: pure arithmetic. numpy 2 pickles a ufunc as `numpy.<name>`; numpy 1.x under
    # the extension module that defines them, which numpy 2 still resolves through numpy.core.
    if isinstance(found, np.ufunc) and module in _UFUNC_MODULES:
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
