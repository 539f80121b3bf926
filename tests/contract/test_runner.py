"""The run threads: user code off the event loop, every result back to its caller."""

from __future__ import annotations

import asyncio
import os

import pytest

from scoring_runtime.contract.runner import RunThreads


@pytest.mark.skipif(not hasattr(os, "SCHED_BATCH"), reason="Linux scheduling policy")
def test_run_threads_do_not_preempt_the_event_loop() -> None:
    async def policy() -> int:
        threads = RunThreads(1)
        threads.start()
        try:
            return await threads.submit(os.sched_getscheduler, 0)
        finally:
            threads.stop()

    assert asyncio.run(policy()) == os.SCHED_BATCH


def test_run_threads_hand_back_every_result_to_its_caller() -> None:
    # Results come back in batches; each caller must still get its own, and the count of jobs in flight return to 0.
    def job(value: int) -> int:
        if value % 7 == 0:
            raise ValueError(value)
        return value * 2

    async def many() -> tuple[list[object], int]:
        threads = RunThreads(2)
        threads.start()
        try:
            answers = await asyncio.gather(*(threads.submit(job, n) for n in range(2000)), return_exceptions=True)
            return list(answers), threads.outstanding
        finally:
            threads.stop()

    answers, outstanding = asyncio.run(many())
    assert outstanding == 0
    for n, answer in enumerate(answers):
        assert (str(answer) == str(n) and isinstance(answer, ValueError)) if n % 7 == 0 else answer == n * 2
