"""Batched calls on the run threads: requests that queue up together are handed to one call, each keeps its own
outcome, and the runner's accounting (outstanding jobs, timeouts, replacement) is as without batches."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from scoring_runtime.contract import interrupts
from scoring_runtime.contract.batches import Batch, BatchItem
from scoring_runtime.contract.interrupts import RunTimedOut
from scoring_runtime.contract.runner import RunThreads


class Recorder:
    """A batch handler that doubles numbers, fails negative ones alone, and records the size of every call."""

    def __init__(self) -> None:
        self.sizes: list[int] = []
        self.threads: set[str] = set()

    def __call__(self, arguments: list[Any]) -> list[Any]:
        self.sizes.append(len(arguments))
        self.threads.add(threading.current_thread().name)
        return [ValueError(value) if value < 0 else value * 2 for value in arguments]


@contextlib.contextmanager
def _running(count: int) -> Iterator[RunThreads]:
    threads = RunThreads(count)
    threads.start()
    try:
        yield threads
    finally:
        threads.stop()


async def _blocked(threads: RunThreads, count: int = 1) -> tuple[threading.Event, list[asyncio.Future[Any]]]:
    """Every run thread busy until the event is set: what is submitted meanwhile waits in the queue."""
    release = threading.Event()
    started = threading.Barrier(count + 1)

    def hold() -> str:
        started.wait()
        release.wait()
        return "held"

    holders = [threads.submit(hold) for _ in range(count)]
    await asyncio.get_running_loop().run_in_executor(None, started.wait)
    return release, holders


def test_waiting_calls_run_as_one_and_each_gets_its_own_outcome() -> None:
    handler = Recorder()

    async def scenario() -> tuple[list[Any], int]:
        with _running(1) as threads:
            release, holders = await _blocked(threads)
            batch = Batch(handler, max_size=4)
            pending = [threads.submit_batched(batch, value) for value in (1, 2, -3, 4, 5, 6)]
            release.set()
            answers = await asyncio.gather(*holders, *pending, return_exceptions=True)
            return list(answers), threads.outstanding

    answers, outstanding = asyncio.run(scenario())
    assert answers[0] == "held"
    assert answers[1:3] == [2, 4] and answers[4:] == [8, 10, 12]
    assert isinstance(answers[3], ValueError) and answers[3].args == (-3,)
    assert handler.sizes == [4, 2]  # at most max_size together, the oldest first
    assert outstanding == 0


def test_an_idle_server_calls_each_alone_without_waiting_for_a_batch() -> None:
    handler = Recorder()

    async def scenario() -> list[Any]:
        with _running(1) as threads:
            batch = Batch(handler, max_size=8)
            return [await threads.submit_batched(batch, value) for value in range(3)]

    assert asyncio.run(scenario()) == [0, 2, 4]
    assert handler.sizes == [1, 1, 1]


def test_a_handler_that_raises_fails_every_call_of_its_batch_and_the_next_batch_runs() -> None:
    calls: list[list[Any]] = []

    def handle(arguments: list[Any]) -> list[Any]:
        calls.append(arguments)
        if "boom" in arguments:
            raise RuntimeError("boom")
        return arguments

    async def scenario() -> list[Any]:
        with _running(1) as threads:
            release, holders = await _blocked(threads)
            batch = Batch(handle, max_size=2)
            pending = [threads.submit_batched(batch, value) for value in ("a", "boom", "c")]
            release.set()
            return list(await asyncio.gather(*pending, return_exceptions=True))

    first, second, third = asyncio.run(scenario())
    assert isinstance(first, RuntimeError) and isinstance(second, RuntimeError)
    assert third == "c"
    assert calls == [["a", "boom"], ["c"]]


def test_a_handler_answering_the_wrong_number_of_outcomes_is_an_error_for_each() -> None:
    async def scenario() -> list[Any]:
        with _running(1) as threads:
            release, holders = await _blocked(threads)
            batch = Batch(lambda arguments: arguments[:1], max_size=4)
            pending = [threads.submit_batched(batch, value) for value in (1, 2)]
            release.set()
            return list(await asyncio.gather(*pending, return_exceptions=True))

    answers = asyncio.run(scenario())
    assert all(isinstance(answer, RuntimeError) and "a batch of 2 calls" in str(answer) for answer in answers)


def test_several_threads_share_the_queue_and_answer_every_call_once() -> None:
    handler = Recorder()

    async def scenario() -> tuple[list[Any], int]:
        with _running(3) as threads:
            batch = Batch(handler, max_size=5)
            answers = await asyncio.gather(*(threads.submit_batched(batch, value) for value in range(3000)))
            return list(answers), threads.outstanding

    answers, outstanding = asyncio.run(scenario())
    assert answers == [value * 2 for value in range(3000)]
    assert sum(handler.sizes) == 3000 and max(handler.sizes) <= 5
    assert outstanding == 0


def test_a_claim_takes_its_own_item_even_behind_one_another_thread_has_yet_to_claim() -> None:
    loop = asyncio.new_event_loop()
    try:
        batch = Batch(lambda arguments: arguments, max_size=1)
        first, second = (BatchItem(value, loop.create_future(), None) for value in (1, 2))  # type: ignore[arg-type]
        batch.add(first)
        batch.add(second)
        # The thread that took the second job claims before the one that took the first.
        assert batch.claim(second) == [second]
        assert batch.claim(first) == [first]
        assert batch.claim(first) == [] and len(batch) == 0
        with pytest.raises(ValueError, match="at least one"):
            Batch(lambda arguments: arguments, max_size=0)
    finally:
        loop.close()


def test_calls_whose_clients_gave_up_while_waiting_are_not_run() -> None:
    handler = Recorder()

    async def scenario() -> tuple[list[Any], int]:
        with _running(1) as threads:
            release, holders = await _blocked(threads)
            batch = Batch(handler, max_size=8)
            pending = [threads.submit_batched(batch, value) for value in (1, 2, 3)]
            pending[1].set_exception(TimeoutError())  # what the scoring timeout does to a waiting call
            release.set()
            answers = await asyncio.gather(*pending, return_exceptions=True)
            return list(answers), threads.outstanding

    answers, outstanding = asyncio.run(scenario())
    assert answers[0] == 2 and isinstance(answers[1], TimeoutError) and answers[2] == 6
    assert handler.sizes == [2]
    assert outstanding == 0


def test_waiting_calls_of_a_worker_being_replaced_fail_and_running_ones_still_answer() -> None:
    entered = threading.Event()
    release = threading.Event()

    def handle(arguments: list[Any]) -> list[Any]:
        entered.set()
        release.wait()
        return arguments

    async def scenario() -> tuple[list[Any], int, int]:
        with _running(1) as threads:
            batch = Batch(handle, max_size=2)
            running = threads.submit_batched(batch, "running")
            await asyncio.get_running_loop().run_in_executor(None, entered.wait)
            waiting = [threads.submit_batched(batch, value) for value in ("w1", "w2")]
            dropped = threads.fail_queued(lambda: ConnectionAbortedError("replaced"))
            release.set()
            answers = await asyncio.gather(running, *waiting, return_exceptions=True)
            return list(answers), dropped, threads.outstanding

    answers, dropped, outstanding = asyncio.run(scenario())
    assert answers[0] == "running"
    assert all(isinstance(answer, ConnectionAbortedError) for answer in answers[1:])
    assert dropped == 2 and outstanding == 0


def test_a_batch_is_stopped_past_its_timeout_only_once_every_call_in_it_has_timed_out() -> None:
    looping = threading.Event()
    stopped = threading.Event()
    give_up = threading.Event()

    def handle(arguments: list[Any]) -> list[Any]:
        try:
            looping.set()
            while not give_up.is_set():
                pass
        except RunTimedOut:
            stopped.set()
            raise
        return arguments

    async def scenario() -> tuple[bool, bool, list[Any], int]:
        threads = RunThreads(1)
        threads.start()
        try:
            release, holders = await _blocked(threads)
            batch = Batch(handle, max_size=2)
            first, second = (threads.submit_batched(batch, value) for value in (1, 2))
            release.set()
            await holders[0]
            # The job counts as running from just before the call: an interrupt sent then lands at handle's entry,
            # outside the try that records it (the batch still stops, but unobserved). Wait until it is inside.
            await asyncio.get_running_loop().run_in_executor(None, looping.wait)
            assert set(threads.overdue(0.0)) == {first, second}
            first.set_exception(TimeoutError())
            alone = threads.stop_overdue(first, grace)  # the second still has time: the batch runs on
            second.set_exception(TimeoutError())
            both = threads.stop_overdue(second, grace)
            answers = await asyncio.gather(first, second, return_exceptions=True)
            # Interrupted, the batch ends and settles; where interrupts are unavailable (under a tracer, such as
            # coverage's on 3.11), its thread is given up after the grace, and both its calls stop counting.
            while threads.outstanding:
                await asyncio.sleep(0.01)
            return alone, both, list(answers), threads.abandoned
        finally:
            give_up.set()
            threads.stop()

    interruptible = interrupts.unavailable() is None
    # Time for the interrupt to land before the thread is given up: long where it can land (a loaded machine may
    # not run a SCHED_BATCH thread for a while), short where it cannot.
    grace = 10.0 if interruptible else 0.2
    alone, both, answers, abandoned = asyncio.run(scenario())
    assert not alone and both
    assert all(isinstance(answer, TimeoutError) for answer in answers)
    # Interrupted where it can be, else given up on: either way once, after both calls timed out, with nothing left
    # counted.
    assert stopped.is_set() == interruptible
    assert abandoned == (0 if interruptible else 1)
