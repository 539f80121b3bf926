"""Dedicated threads that run the user's synchronous code off the event loop.

A queue feeding N long-lived threads, with results posted back through `call_soon_threadsafe`, costs far less per
call than anyio's thread pool (see the observed measurements). The number of threads is the number of run() calls
that can execute at once: a call that has timed out for its client keeps its thread until it really returns, so
timeouts never let more calls run than configured.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from scoring_runtime.contract import interrupts
from scoring_runtime.contract.batches import Batch, BatchItem, live, settle_each
from scoring_runtime.contract.completions import Completions, Settle, set_exception, set_result
from scoring_runtime.contract.interrupts import RunTimedOut

logger = logging.getLogger("azmlinfsrv")

T = TypeVar("T")

# A batched call's job holds its Batch where others hold the function, and the BatchItem as its one argument.
_Job = tuple[contextvars.Context, Callable[..., Any] | Batch, tuple[Any, ...], asyncio.Future[Any], Completions]


class RunThreads:
    def __init__(self, size: int, name: str = "scoring-run") -> None:
        self.size = size
        self.name = name
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        # Jobs submitted and not finished, queued or running (not abandoned ones). Changed only on the loop.
        self.outstanding = 0
        # Threads given up on (see `abandon`) that are still stuck in their call, and all ever given up on.
        self.abandoned = 0
        self.abandoned_total = 0
        # Per slot, under _lock: the job its thread is running ((monotonic start, its futures: several for a batch),
        # or None while idle),
        # whether that job has been interrupted, the thread's id, and a generation that abandoning the slot's
        # thread increases, so that the thread, when its call returns, knows the slot has a new thread.
        self._lock = threading.Lock()
        self._running: list[tuple[float, tuple[asyncio.Future[Any], ...]] | None] = [None] * size
        self._interrupted = [False] * size
        self._idents = [0] * size
        self._generations = [0] * size
        self._completions: Completions | None = None
        # Told the number of abandoned threads still running whenever it changes, and whether a thread was just
        # abandoned (else one has returned); on the event loop or a run thread.
        self.on_abandoned: Callable[[int, bool], None] | None = None
        self._warned = False

    def start(self) -> None:
        if self._threads:
            return
        self._threads = [self._start_thread(index) for index in range(self.size)]

    def _start_thread(self, index: int) -> threading.Thread:
        generation = self._generations[index]
        name = f"{self.name}-{index}" + (f".{generation}" if generation else "")
        thread = threading.Thread(target=self._work, args=(index, generation), name=name, daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        """Let the threads finish their current job and exit; does not wait for them."""
        for _ in self._threads:
            self._jobs.put(None)
        self._threads = []

    def submit(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        """Queue `fn(*args)` for a run thread; the returned future resolves on the calling event loop.

        The caller may abandon the future (on a timeout): a job whose future is done before a thread takes it is
        skipped; one already running runs on unless `stop_overdue` stops it.
        """
        future, completions = self._new_future()
        self._jobs.put((contextvars.copy_context(), fn, args, future, completions))
        return future

    def submit_batched(self, batch: Batch, argument: Any) -> asyncio.Future[Any]:
        """Queue one call of `batch.handle`; calls of the same batch waiting at the same time run as one (see
        batches.py). The future is this call's outcome alone, and may be abandoned as `submit`'s may: a batch is
        stopped past its timeout only once every call in it has been."""
        future, completions = self._new_future()
        item = BatchItem(argument, future, completions)
        batch.add(item)
        self._jobs.put((contextvars.copy_context(), batch, (item,), future, completions))
        return future

    def _new_future(self) -> tuple[asyncio.Future[Any], Completions]:
        loop = asyncio.get_running_loop()
        completions = self._completions
        if completions is None or completions.loop is not loop:
            completions = self._completions = Completions(loop, self._settled)
        self.outstanding += 1
        return loop.create_future(), completions

    def overdue(self, limit_s: float) -> list[asyncio.Future[Any]]:
        """The futures of the jobs that have been running for more than `limit_s` seconds."""
        now = time.monotonic()
        return [
            future
            for entry in list(self._running)
            if entry is not None and now - entry[0] > limit_s
            for future in entry[1]
        ]

    def stop_overdue(self, future: asyncio.Future[Any], grace_s: float) -> bool:
        """On the event loop, for a job whose client has been answered (timed out): raise RunTimedOut inside it, and
        if it is still running `grace_s` seconds later (blocked in C, or swallowing the exception), abandon its
        thread. False if the job was not running (already finished, or never started: then it is skipped)."""
        if not self._interrupt(future):
            return False
        future.get_loop().call_later(grace_s, self.abandon, future)
        return True

    def _interrupt(self, future: asyncio.Future[Any]) -> bool:
        with self._lock:
            index = self._slot_of(future)
            if index is None:
                return False
            entry = self._running[index]
            if entry is not None and not all(other.done() for other in entry[1]):
                return False  # a batch whose other calls still have time: theirs are not given up for this one
            if self._interrupted[index]:
                return True
            why_not = interrupts.unavailable()
            if why_not is None:
                self._interrupted[index] = interrupts.raise_in_thread(self._idents[index])
                return True
        if not self._warned:
            self._warned = True
            logger.warning(
                "run() calls past their timeout are not interrupted (%s): their threads are abandoned", why_not
            )
        return True

    def abandon(self, future: asyncio.Future[Any]) -> bool:
        """On the event loop: if the job of `future` is still running, give its slot a new thread and leave the old
        one to its call, which then ends unobserved. Python cannot stop a thread blocked in C; this frees the run
        slot (and keeps the concurrency as configured for the calls that count) at the cost of a stuck thread."""
        with self._lock:
            index = self._slot_of(future)
            if index is None:
                return False
            started = self._running[index]
            self._generations[index] += 1
            self._running[index] = None
            interrupted, self._interrupted[index] = self._interrupted[index], False
            self.abandoned += 1
            self.abandoned_total += 1
            alive = self.abandoned
        # Every call of an abandoned batch is over for its client: each was counted.
        self.outstanding -= len(started[1]) if started is not None else 1
        if self.on_abandoned is not None:
            self.on_abandoned(alive, True)
        if interrupted:  # it waits in a thread stuck in C: do not let it keep every thread on the slow path
            interrupts.clear_signal()
        if self._threads:
            self._threads[index] = self._start_thread(index)
        elapsed = time.monotonic() - started[0] if started is not None else 0.0
        logger.error(
            "run() is still running %.1f s after it started, past its timeout: "
            "its thread is abandoned and a new one takes its slot (%d abandoned thread(s) still running)",
            elapsed,
            alive,
        )
        return True

    def _slot_of(self, future: asyncio.Future[Any]) -> int | None:
        for index, entry in enumerate(self._running):
            if entry is not None and future in entry[1]:
                return index
        return None

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
            batch = job[1]
            if isinstance(batch, Batch) and not batch.withdraw(job[2][0]):
                continue  # a running batch has it, and answers it
            dropped += 1
            self.outstanding -= 1
            set_exception(job[3], exc())

    def _work(self, index: int, generation: int) -> None:
        _prefer_not_to_preempt()
        ident = threading.get_ident()
        with self._lock:
            self._idents[index] = ident
        while (job := self._jobs.get()) is not None:
            context, fn, args, future, completions = job
            items: list[BatchItem] | None = None
            if isinstance(fn, Batch):
                items = live(fn.claim(args[0]))
                if not items:
                    continue
                futures = tuple(item.future for item in items)
                fn, args = fn.handle, ([item.argument for item in items],)
            elif future.done():  # its client has had its answer (a timeout) while it waited: do not start it
                completions.add(set_result, future, None)
                continue
            else:
                futures = (future,)
            try:
                settle, value = self._call(index, generation, context, fn, args, futures)
            except RunTimedOut as late:  # it landed in _call's own lines, after the user's call had returned
                self._finish(index, generation)
                settle, value = set_exception, late
            if self._generations[index] != generation:
                self._abandoned_thread_ends()
                return
            if items is None:
                completions.add(settle, future, value)
            else:
                settle_each(items, settle, value)
            del job, context, fn, args, future, futures, completions, value, items

    def _call(
        self,
        index: int,
        generation: int,
        context: contextvars.Context,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        futures: tuple[asyncio.Future[Any], ...],
    ) -> tuple[Settle, Any]:
        # No lock needed to start: an interrupt aims at a job it finds here, and _finish settles with it under one.
        self._running[index] = (time.monotonic(), futures)
        try:
            return set_result, context.run(fn, *args)
        except BaseException as exc:  # handed to the awaiting coroutine, which decides
            return set_exception, exc
        finally:
            self._finish(index, generation)

    def _finish(self, index: int, generation: int) -> None:
        """The job of this thread is over: no interrupt may reach it from now on, nor land in our own code later."""
        with self._lock:
            if self._generations[index] == generation:
                self._running[index] = None
                interrupted, self._interrupted[index] = self._interrupted[index], False
            else:
                interrupted = True  # abandoned, so it may have been interrupted
        if interrupted:
            # One that has not landed yet (the call returned first) lands now; one landing at this call's entry
            # reaches _call's caller, which absorbs it in turn.
            interrupts.absorb()

    def _abandoned_thread_ends(self) -> None:
        with self._lock:
            self.abandoned -= 1
            left = self.abandoned
        logger.warning("An abandoned run() call has returned; %d abandoned thread(s) still running", left)
        if self.on_abandoned is not None:
            self.on_abandoned(left, False)

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
