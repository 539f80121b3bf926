"""Stopping a run() that has outlived its timeout: an exception raised inside its thread.

The reference raises `TimeoutError` in `run()` from a SIGALRM handler, which works only on the main thread and which
`except Exception` swallows. Here the exception is raised in the run thread through CPython's
`PyThreadState_SetAsyncExc` (public C API, used through ctypes): it lands at the next bytecode the thread runs, so it
stops Python code (a loop, a `time.sleep` in slices), but not a call blocked in C, which only sees it on return.
`RunTimedOut` derives from BaseException so that a script's `except Exception` does not swallow it; its `finally`
blocks and context managers still run.
"""

from __future__ import annotations

import ctypes
import logging

logger = logging.getLogger("scoring_runtime")


class RunTimedOut(BaseException):
    """Raised inside a run() that has outlived SCORING_TIMEOUT_MS; its client has had its 500 already."""


def _set_async_exc() -> object | None:
    try:
        function = ctypes.pythonapi.PyThreadState_SetAsyncExc
    except (AttributeError, ValueError):  # not CPython
        return None
    function.argtypes = (ctypes.c_ulong, ctypes.py_object)
    function.restype = ctypes.c_int
    return function


_SET_ASYNC_EXC = _set_async_exc()
CAN_INTERRUPT = _SET_ASYNC_EXC is not None


def raise_in_thread(ident: int) -> bool:
    """Have the thread `ident` raise RunTimedOut at its next bytecode; False where that is impossible."""
    if _SET_ASYNC_EXC is None:
        return False
    return bool(_SET_ASYNC_EXC(ident, RunTimedOut) == 1)  # type: ignore[operator]


def withdraw(ident: int) -> None:
    """Cancel an exception `raise_in_thread` asked for that has not landed yet (a NULL exception clears it)."""
    if _SET_ASYNC_EXC is not None:
        _SET_ASYNC_EXC(ident, ctypes.py_object())  # type: ignore[operator]
