"""The C library's heap calls, through ctypes: glibc's public API (malloc.h); None off glibc (musl, macOS).

The serving layer tunes the heap with them (serving/process.py) and the model repository gives an unloaded model's
memory back with them (models/memory.py).
"""

from __future__ import annotations

import ctypes


def _glibc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
        libc.malloc_trim.argtypes = (ctypes.c_size_t,)
    except (OSError, AttributeError):
        return None
    return libc


LIBC = _glibc()


def malloc_trim() -> None:
    """Hand the heap's free memory back to the OS."""
    if LIBC is not None:
        LIBC.malloc_trim(0)
