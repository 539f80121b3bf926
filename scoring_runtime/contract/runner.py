"""Dedicated threads that run the user's synchronous code off the event loop.

A queue feeding N long-lived threads, with results posted back through `call_soon_threadsafe`, costs far less per
call than anyio's thread pool (see the observed measurements). The number of threads is the number of run() calls
that can execute at once: a call that has timed out for its client keeps its thread until it really returns, so
timeouts never let more calls run than configured.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import os
import queue
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

_Settle = Callable[[asyncio.Future[Any], Any], None]


class _Completions:
    """Finished jobs of one event loop, handed back in batches: one wake-up of the loop (a write to its self-pipe)
    per batch instead of one per job. Under load several jobs finish while the loop is busy, and they share it."""

    __slots__ = ("_drain_scheduled", "_items", "_on_settled", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop, on_settled: Callable[[], None]) -> None:
        self.loop = loop
        self._items: collections.deque[tuple[_Settle, asyncio.Future[Any], Any]] = collections.deque()
        self._drain_scheduled = False
        self._on_settled = on_settled

    def add(self, settle: _Settle, future: asyncio.Future[Any], value: Any) -> None:
        """On a run thread. Appending before reading the flag means a drain that has already cleared it either
        sees this item or is followed by the one scheduled here."""
        self._items.append((settle, future, value))
        if not self._drain_scheduled:
            self._drain_scheduled = True
            try:
                self.loop.call_soon_threadsafe(self._drain)
            except RuntimeError:
                pass  # The loop has closed (shutdown while a run() was still going); nobody is waiting.

    def _drain(self) -> None:
        self._drain_scheduled = False
        items = self._items
        while items:
            settle, future, value = items.popleft()
            self._on_settled()
            settle(future, value)


_Job = tuple[contextvars.Context, Callable[..., Any], tuple[Any, ...], asyncio.Future[Any], _Completions]


class RunThreads:
    def __init__(self, size: int, name: str = "scoring-run") -> None:
        self.size = size
        self.name = name
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        # Jobs submitted and not finished, queued or running (abandoned ones included). Changed only on the loop.
        self.outstanding = 0
        # Per thread, the job it is running: (monotonic start, its future), or None while idle.
        self._running: list[tuple[float, asyncio.Future[Any]] | None] = [None] * size
        self._completions: _Completions | None = None

    def start(self) -> None:
        if self._threads:
            return
        for index in range(self.size):
            thread = threading.Thread(target=self._work, args=(index,), name=f"{self.name}-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        """Let the threads finish their current job and exit; does not wait for them."""
        for _ in self._threads:
            self._jobs.put(None)
        self._threads = []

    def submit(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        """Queue `fn(*args)` for a run thread; the returned future resolves on the calling event loop.

        The caller may abandon the future (on a timeout); the job still runs to its end on its thread.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        completions = self._completions
        if completions is None or completions.loop is not loop:
            completions = self._completions = _Completions(loop, self._settled)
        self.outstanding += 1
        self._jobs.put((contextvars.copy_context(), fn, args, future, completions))
        return future

    def overdue(self, limit_s: float) -> list[asyncio.Future[Any]]:
        """The futures of the jobs that have been running for more than `limit_s` seconds."""
        now = time.monotonic()
        return [entry[1] for entry in list(self._running) if entry is not None and now - entry[0] > limit_s]

    def fail_queued(self, exc: Callable[[], BaseException]) -> int:
        """Settle every job still waiting for a thread with `exc()` and drop it; return how many there were.

        For a worker that is about to be replaced: its clients get an answer now instead of waiting for a thread
        that may never come free. Call it on the event loop, before `stop()`.
        """
        dropped = 0
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                return dropped
            if job is None:  # stop() has already been called: keep its sentinels
                self._jobs.put(None)
                return dropped
            dropped += 1
            self.outstanding -= 1
            _set_exception(job[3], exc())

    def _work(self, index: int) -> None:
        _prefer_not_to_preempt()
        while (job := self._jobs.get()) is not None:
            context, fn, args, future, completions = job
            self._running[index] = (time.monotonic(), future)
            try:
                result = context.run(fn, *args)
            except BaseException as exc:  # handed to the awaiting coroutine, which decides
                completions.add(_set_exception, future, exc)
            else:
                completions.add(_set_result, future, result)
            finally:
                self._running[index] = None
            del job, context, fn, args, future, completions

    def _settled(self) -> None:
        self.outstanding -= 1


def _prefer_not_to_preempt() -> None:
    """Run this thread under SCHED_BATCH (Linux): same priority, but waking it does not preempt the event loop.

    Otherwise, on a busy core, handing a job over wakes this thread at once, only for it to find the GIL held by the
    loop and sleep again: about five context switches per call instead of two.
    """
    policy = getattr(os, "SCHED_BATCH", None)
    if policy is None:
        return
    try:
        os.sched_setscheduler(0, policy, os.sched_param(0))
    except OSError:
        pass  # not permitted here (a seccomp profile, say): the default policy works, only a little slower


def _set_result(future: asyncio.Future[Any], result: Any) -> None:
    if not future.done():
        future.set_result(result)


def _set_exception(future: asyncio.Future[Any], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)
