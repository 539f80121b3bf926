"""joblib's file format under the restricted unpickler: a pickle stream, maybe compressed, whose numpy arrays are
written after the object that stands for them (`NumpyArrayWrapper`).

joblib publishes only `load`, which unpickles anything. The restricted reader uses joblib's unpickler class
(`numpy_pickle.NumpyUnpickler`) and decompressing opener (`numpy_pickle_utils._validate_fileobject_and_memmap`), so
it runs only with the joblib versions it was tested with; with another, a joblib file is refused unless the operator
trusts pickles. Arrays of Python objects are read here rather than by joblib (before 1.6 it reads them with a plain
`pickle.load`): their elements face the same rules as the rest of the file.
"""

from __future__ import annotations

import functools
import importlib.metadata
import pickle
from pathlib import Path
from typing import Any, BinaryIO

from scoring_runtime.models.unpickle import MissingGlobal, Refused, RestrictedUnpickler
from scoring_runtime.models.unpickle_rules import JOBLIB_ARRAY

# The joblib releases (major.minor) the restricted reader is tested with: 1.5.2 and 1.6.0 (1.4 names the opener
# `_read_fileobject`).
TESTED_JOBLIB = ("1.5", "1.6")
# How joblib's compressed files begin (zlib, gzip, bz2, xz, lzma alone, lz4, and joblib < 0.9.3's zfile); no pickle
# stream begins so.
_COMPRESSED = (b"\x78", b"\x1f\x8b", b"BZ", b"\xfd7zXZ", b"\x5d\x00", b"\x04\x22\x4d\x18", b"ZF")
_NO_JOBLIB = "joblib is not installed: pip install 'scoring-runtime[sklearn]'"


def joblib_version() -> str | None:
    """The installed joblib's version, or None without joblib."""
    try:
        return importlib.metadata.version("joblib")
    except importlib.metadata.PackageNotFoundError:
        return None


def is_tested(version: str) -> bool:
    return ".".join(version.split(".")[:2]) in TESTED_JOBLIB


def _untested(version: str) -> Refused:
    tested = " or ".join(TESTED_JOBLIB)
    return Refused(
        f"is in joblib's format, which restricted loading reads only with joblib {tested}, "
        f"not the installed {version} (install one of those)"
    )


class _WithoutJoblib(RestrictedUnpickler):
    """A plain pickle read when joblib's format cannot be: an array stored joblib's way is refused, with the reason."""

    def __init__(self, file: BinaryIO, version: str | None) -> None:
        super().__init__(file)
        self._version = version

    def joblib_array(self) -> Any:
        if self._version is None:
            raise MissingGlobal(f"{JOBLIB_ARRAY} cannot be imported: {_NO_JOBLIB}")
        raise _untested(self._version)


def load_restricted(path: Path) -> Any:
    """The object in a plain pickle or joblib file, read under the restricted unpickler's rules."""
    version = joblib_version()
    with path.open("rb") as file:
        if version is not None and is_tested(version):
            return _load_joblib(path, file)
        if file.read(6).startswith(_COMPRESSED):
            if version is None:
                raise MissingGlobal(f"the file is compressed by joblib, and {_NO_JOBLIB}")
            raise _untested(version)
        file.seek(0)
        return _WithoutJoblib(file, version).load()


def _load_joblib(path: Path, file: BinaryIO) -> Any:
    from joblib.numpy_pickle_utils import _validate_fileobject_and_memmap  # type: ignore[import-untyped]

    with _validate_fileobject_and_memmap(file, str(path), None) as (stream, _):
        if isinstance(stream, str):  # joblib < 0.10 kept arrays in companion files that it reads with numpy.load
            raise Refused("is in the format of joblib before 0.10, whose arrays are separate files")
        return _joblib_unpickler()(str(path), stream).load()


@functools.cache
def _joblib_unpickler() -> Any:
    from joblib.numpy_pickle import NumpyArrayWrapper, NumpyUnpickler  # type: ignore[import-untyped]

    class JoblibUnpickler(RestrictedUnpickler, NumpyUnpickler):  # type: ignore[misc]
        dispatch = RestrictedUnpickler.dispatch.copy()

        def __init__(self, filename: str, stream: BinaryIO) -> None:
            # Native byte order, as joblib.load gives without memory mapping.
            NumpyUnpickler.__init__(self, filename, stream, True)
            self._named: set[int] = set()

        def joblib_array(self) -> Any:
            return NumpyArrayWrapper

        def _load_build_array(self) -> None:
            RestrictedUnpickler._load_build(self)
            if type(self.stack[-1]) is NumpyArrayWrapper:
                self.stack[-1] = _read_array(self, self.stack[-1])

        dispatch[pickle.BUILD[0]] = _load_build_array

    return JoblibUnpickler


def _read_array(unpickler: Any, wrapper: Any) -> Any:
    """The array a wrapper stands for, read from where the stream stands."""
    import numpy as np

    dtype, shape = getattr(wrapper, "dtype", None), getattr(wrapper, "shape", None)
    valid_shape = isinstance(shape, tuple) and all(isinstance(size, int) and size >= 0 for size in shape)
    if not isinstance(dtype, np.dtype) or not valid_shape or getattr(wrapper, "order", None) not in ("C", "F"):
        raise ValueError("an array header in the file is malformed")
    if dtype.hasobject:
        # Written as a pickle stream of its own after the wrapper: its elements face the same rules.
        array = RestrictedUnpickler(unpickler.file_handle).load()
        if not isinstance(array, np.ndarray) or array.dtype != dtype or array.shape != shape:
            raise ValueError("an array of objects in the file does not match its header")
        return array
    wrapper.allow_mmap = False  # never mapped: the file may change under a running server
    return wrapper.read(unpickler, unpickler.ensure_native_byte_order)
