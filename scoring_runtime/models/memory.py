"""The memory a model holds, measured as the growth of the process's resident set across its load, and freed memory
given back to the OS once a model is dropped.

Frameworks do not say what a loaded model takes (a pickle, an ONNX session, a TensorFlow graph each allocate through
their own allocators), so the resident set around the load is what is counted. That also counts what other threads
allocate meanwhile (request bodies), and misses what the load takes from memory the C heap kept free: free memory
is given back before a measured load, so that its allocations show. Dropping the last reference frees
Python objects, but glibc keeps freed heap memory for reuse (the serving layer asks it to keep more: see
serving/process.py), and reference cycles wait for the collector: `give_back` runs both, so the memory a dropped
model held is really returned.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import threading
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from scoring_runtime.glibc import malloc_trim, trimming

logger = logging.getLogger("azmlinfsrv")

T = TypeVar("T")

_STATM = "/proc/self/statm"
_PAGE_BYTES = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def resident_bytes() -> int | None:
    """The process's resident set size in bytes; None where /proc is not available (not Linux)."""
    try:
        with open(_STATM, "rb") as statm:
            fields = statm.read().split()
    except OSError:
        return None
    return int(fields[1]) * _PAGE_BYTES


def give_back() -> None:
    """Collect cyclic garbage, then hand the C heap's free memory back to the OS (glibc only)."""
    gc.collect()
    malloc_trim()


class Reclaimer(Generic[T]):
    """Frees the models a repository drops, and, when `serial`, keeps that out of the loads being measured.

    `measuring()` holds the load lock across a load and its measure: a model dropped meanwhile is deferred, then
    freed by the loading thread before it lets the lock go, instead of shrinking the resident set under the measure.
    Reentrant, because a script's loader may load another model through the script API.
    """

    def __init__(self, serial: bool, on_evict: Callable[[T], None] | None) -> None:
        self.serial = serial
        self._on_evict = on_evict
        self._load_lock = threading.RLock()
        self._lock = threading.Lock()
        self._deferred: list[T] = []

    @contextlib.contextmanager
    def measuring(self) -> Iterator[None]:
        if not self.serial:
            yield
            return
        self._load_lock.acquire()
        try:
            yield
        finally:
            self._unlock()

    def dispose(self, values: list[T]) -> None:
        """Free `values` (emptied: the caller keeps no reference), now or once the load being measured has ended."""
        if not values:
            return
        if not self.serial:
            self.free(values)
            return
        with self._lock:
            self._deferred.extend(values)
        values.clear()
        if self._load_lock.acquire(blocking=False):
            self._unlock()

    def free(self, values: list[T]) -> None:
        """Tell on_evict, drop every reference held here, and give the memory back. `values` is emptied."""
        if not values:
            return
        with trimming():  # the frees below, and the collection's, give back the top of the heaps they free
            while values:
                value = values.pop()
                if self._on_evict is not None:
                    try:
                        self._on_evict(value)
                    except Exception:
                        logger.exception("on_evict failed for a dropped model")
                del value
            give_back()

    def _unlock(self) -> None:
        while True:
            with self._lock:
                values, self._deferred = self._deferred, []
            self.free(values)
            self._load_lock.release()
            with self._lock:
                if not self._deferred:
                    return
            # Deferred after our last look: whoever holds the lock now frees them, or we take it again and do.
            if not self._load_lock.acquire(blocking=False):
                return
