"""Stopping a run() that has outlived its timeout: an exception raised inside its thread.

The reference raises `TimeoutError` in `run()` from a SIGALRM handler, which works only on the main thread and which
`except Exception` swallows. Here the exception is raised in the run thread through CPython's
`PyThreadState_SetAsyncExc` (public C API, used through ctypes): it lands at the next bytecode the thread runs, so it
stops Python code (a loop, a `time.sleep` in slices), but not a call blocked in C, which only sees it on return.
`RunTimedOut` derives from BaseException so that a script's `except Exception` does not swallow it; its `finally`
blocks and context managers still run.

Three properties of CPython shape the use (read in its ceval.c and pystate.c, and measured):
- Before 3.13 the "an async exception is pending" signal is the interpreter's, not the thread's: every thread takes
  the slow path of its eval-breaker checks until the target thread consumes its exception, and only consuming one
  clears it (setting a NULL exception signals again). So an exception is never withdrawn: one that was not used is
  consumed where it cannot hurt (`absorb`), and after giving up on a thread stuck in C the signal is cleared by
  consuming a throwaway one in the calling thread (`clear_signal`); the stuck thread still gets its own whenever it
  next handles pending work.
- On 3.11, a thread with a tracer or profiler (coverage, a debugger, cProfile) spins at the next function entry for as
  long as that signal is up, so a pending exception in a thread stuck in C freezes every traced thread, the event
  loop included. Where that can happen, calls are not interrupted; their threads are abandoned after the grace time.
- On 3.13 the exception can skip the function's handlers (see `_SKIPS_HANDLERS`): calls are not interrupted there.
"""

from __future__ import annotations

import ctypes
import sys
import threading

_TRACE_SPINS = sys.version_info < (3, 12)
# CPython 3.13 sometimes raises an asynchronous exception where the function's own `except` and `finally` clauses do not
# apply: it leaves the function as if they were not there. A loop calling `Event.is_set()` in a try/finally, interrupted
# 300 times, skipped its finally 133 times on 3.13.0 and never on 3.11 or 3.12 (python/cpython#139622 reports the
# same). A script's cleanup (a lock released by `with`) would be skipped, so from 3.13 on (3.14 is untested) calls are
# not interrupted; their threads are abandoned after the grace time.
_SKIPS_HANDLERS = sys.version_info >= (3, 13)


class RunTimedOut(BaseException):
    """Raised inside a run() that has outlived SCORING_TIMEOUT_MS; its client has had its 500 already."""


class _Throwaway(BaseException):
    """Raised in the calling thread only to consume the interpreter's pending-exception signal."""


def _set_async_exc() -> object | None:
    try:
        function = ctypes.pythonapi.PyThreadState_SetAsyncExc
    except (AttributeError, ValueError):  # not CPython
        return None
    function.argtypes = (ctypes.c_ulong, ctypes.py_object)
    function.restype = ctypes.c_int
    return function


_SET_ASYNC_EXC = _set_async_exc()


def unavailable() -> str | None:
    """Why run() calls cannot be interrupted here and now, or None when they can."""
    if _SET_ASYNC_EXC is None:
        return "this interpreter has no PyThreadState_SetAsyncExc"
    if _SKIPS_HANDLERS:
        return "CPython 3.13 can raise the interrupt past the call's finally clauses"
    if _TRACE_SPINS and (sys.gettrace() or sys.getprofile() or threading.gettrace() or threading.getprofile()):
        return "a tracer or profiler is active (coverage, a debugger), which CPython 3.11 would freeze"
    return None


def raise_in_thread(ident: int) -> bool:
    """Have the thread `ident` raise RunTimedOut at its next bytecode; False where that is impossible."""
    if _SET_ASYNC_EXC is None:
        return False
    return bool(_SET_ASYNC_EXC(ident, RunTimedOut) == 1)  # type: ignore[operator]


def absorb() -> None:
    """In a thread that may have a RunTimedOut pending which no call needs any more: let it land here, harmlessly.

    It lands at the loop's backward jump; its consumption also clears the interpreter's signal. One that lands before
    the `try`, at this function's entry, reaches the caller, which must be ready for it (see RunThreads._work).
    """
    try:
        for _ in range(2):
            pass
    except RunTimedOut:
        pass


def clear_signal() -> None:
    """Consume a throwaway async exception in this thread, which clears the interpreter-wide pending signal that a
    RunTimedOut waiting in a thread stuck in C would otherwise keep up (see the module's docstring)."""
    if _SET_ASYNC_EXC is None or sys.version_info >= (3, 13):  # 3.13 signals the target thread alone
        return
    try:
        _SET_ASYNC_EXC(threading.get_ident(), _Throwaway)  # type: ignore[operator]
        for _ in range(2):
            pass
    except _Throwaway:
        pass
