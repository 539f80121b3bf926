"""The C library's heap calls, through ctypes: glibc's public API (malloc.h); None off glibc (musl, macOS).

The serving layer tunes the heap with them (serving/process.py) and the model repository gives an unloaded model's
memory back with them (models/memory.py).
"""

from __future__ import annotations

import contextlib
import ctypes
import threading
from collections.abc import Iterator

# mallopt() parameters (malloc.h), and glibc's default trim threshold.
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
DEFAULT_TRIM_THRESHOLD = 128 * 1024


def _glibc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
        libc.malloc_trim.argtypes = (ctypes.c_size_t,)
    except (OSError, AttributeError):
        return None
    return libc


LIBC = _glibc()
# The trim threshold the server set (glibc has no getter), restored after a trimming() block.
_trim_threshold: int | None = None
_trimming = threading.Lock()


def malloc_trim() -> None:
    """Hand the heap's free memory back to the OS."""
    if LIBC is not None:
        LIBC.malloc_trim(0)


def set_trim_threshold(size: int) -> bool:
    """Keep up to `size` bytes free at the top of each heap before free() gives the rest back. True if applied."""
    global _trim_threshold
    if LIBC is None or LIBC.mallopt(M_TRIM_THRESHOLD, size) != 1:
        return False
    _trim_threshold = size
    return True


@contextlib.contextmanager
def trimming() -> Iterator[None]:
    """Within the block, free() gives back what it frees at the top of a heap beyond glibc's default threshold,
    whatever the server keeps otherwise. malloc_trim() alone does not shrink the top of a thread's heap, where a
    model loaded on a run thread lives: with the server's raised threshold, its last tens of MiB would stay."""
    if LIBC is None or _trim_threshold is None:
        yield
        return
    with _trimming:
        LIBC.mallopt(M_TRIM_THRESHOLD, DEFAULT_TRIM_THRESHOLD)
        try:
            yield
        finally:
            LIBC.mallopt(M_TRIM_THRESHOLD, _trim_threshold)
