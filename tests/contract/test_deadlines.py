"""The single timer behind every scoring timeout: each pending call expires at its own deadline, finished ones never."""

from __future__ import annotations

import asyncio
from typing import Any

from scoring_runtime.contract import deadlines
from scoring_runtime.contract.deadlines import Deadlines


def test_each_pending_call_expires_at_its_own_deadline() -> None:
    async def scenario() -> list[tuple[str, float]]:
        loop = asyncio.get_running_loop()
        start = loop.time()
        expired: list[tuple[str, float]] = []
        names: dict[asyncio.Future[Any], str] = {}

        def expire(future: asyncio.Future[Any]) -> None:
            expired.append((names[future], round(loop.time() - start, 1)))
            future.cancel()

        watch = Deadlines(0.3, expire)
        first, second, third = (loop.create_future() for _ in range(3))
        names.update({first: "first", second: "second", third: "third"})
        watch.watch(first)
        await asyncio.sleep(0.1)
        watch.watch(second)
        watch.watch(third)
        first.set_result(None)  # finishes in time: never expired, and the timer moves on to the next
        await asyncio.sleep(0.5)
        late = loop.create_future()
        names[late] = "late"
        watch.watch(late)  # after a quiet spell the timer is armed again
        await asyncio.sleep(0.4)
        return expired

    assert asyncio.run(scenario()) == [("second", 0.4), ("third", 0.4), ("late", 0.9)]


def test_finished_calls_behind_a_long_one_do_not_pile_up(monkeypatch: Any) -> None:
    monkeypatch.setattr(deadlines, "_COMPACT_AT", 16)

    async def scenario() -> tuple[int, list[bool]]:
        loop = asyncio.get_running_loop()
        expired: list[bool] = []
        watch = Deadlines(60, lambda future: expired.append(True))
        stuck = loop.create_future()
        watch.watch(stuck)
        for _ in range(1000):
            quick = loop.create_future()
            watch.watch(quick)
            quick.set_result(None)
        size = len(watch._entries)
        stuck.cancel()
        return size, expired

    size, expired = asyncio.run(scenario())
    assert size <= 17 and expired == []


def test_a_new_event_loop_starts_afresh() -> None:
    expired: list[int] = []
    watch = Deadlines(0.05, lambda future: expired.append(1))

    async def one() -> None:
        watch.watch(asyncio.get_running_loop().create_future())
        await asyncio.sleep(0.15)

    asyncio.run(one())
    asyncio.run(one())
    assert expired == [1, 1]
