"""A bytes object whose contents are written in place before anyone else sees it.

CPython's C API creates a bytes object with its contents not yet set (`PyBytes_FromStringAndSize(NULL, n)`); that is
how its own `socket.recv` returns data without copying it twice. Reached here through ctypes, the same lets a request
body be read from the socket straight into the object the app receives. The caller must finish writing before it
hands the object out, and must not use the view once it has dropped the object: the view does not keep it alive.

Where the C API cannot be reached this way (another interpreter, a build without exported symbols), or the layout
check below fails, `unfilled_bytes` returns None and callers copy as before.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable

_WRITABLE = 0x200  # PyBUF_WRITE

_Make = Callable[[int], tuple[bytes, memoryview]]


def _c_api() -> _Make | None:
    try:
        new_bytes = ctypes.pythonapi.PyBytes_FromStringAndSize
        view_of = ctypes.pythonapi.PyMemoryView_FromMemory
    except AttributeError:
        return None
    new_bytes.argtypes = (ctypes.c_void_p, ctypes.c_ssize_t)
    new_bytes.restype = ctypes.py_object
    view_of.argtypes = (ctypes.c_void_p, ctypes.c_ssize_t, ctypes.c_int)
    view_of.restype = ctypes.py_object
    # The contents follow the fixed part of the object, which ends with their first byte (ob_sval[1]).
    offset = bytes.__basicsize__ - 1

    def make(size: int) -> tuple[bytes, memoryview]:
        body: bytes = new_bytes(None, size)
        return body, view_of(id(body) + offset, size, _WRITABLE)

    try:
        probe, view = make(4)
        view[:] = b"\x01\x02\x03\x04"
    except (ctypes.ArgumentError, OSError, TypeError, ValueError):
        return None
    return make if probe == b"\x01\x02\x03\x04" else None


_MAKE = _c_api()


def unfilled_bytes(size: int) -> tuple[bytes, memoryview] | None:
    """A new bytes object of `size` (at least 2) with undefined contents, and a writable view of them; or None."""
    if size < 2:
        # Shorter ones may be the interpreter's shared singletons.
        raise ValueError(f"size must be at least 2, not {size}")
    return None if _MAKE is None else _MAKE(size)
