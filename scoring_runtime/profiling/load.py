"""The load: the dataset's bodies sent with aiohttp from one event loop, at one level at a time.

Concurrency mode is a closed loop: N senders, each sending the next body as soon as its last answer arrives. Rate
mode is an open loop: the k-th request is due at t0 + k/rate (or after exponential gaps, a Poisson process), whether
or not earlier ones were answered, and its latency runs from that due time. A server that falls behind then shows
its queue in the latencies, where a closed loop would wait for it and hide it (coordinated omission). At most
`max_in_flight` requests are outstanding; a due request beyond that waits in the client, its wait counted.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import aiohttp

from scoring_runtime.profiling.windows import Sample

DRAIN_S = 30.0  # the longest a level's last requests are waited for before they are given up
_ERROR_TEXT = 200


@dataclass(frozen=True)
class Level:
    mode: str  # "concurrency" or "rate"
    value: float  # requests outstanding, or requests a second

    @property
    def label(self) -> str:
        return f"c={self.value:g}" if self.mode == "concurrency" else f"{self.value:g}/s"


def constant_schedule(rate: float, start: float) -> Iterator[float]:
    """Due times of a steady rate: t0 + k/rate, computed from k (no drift from adding gaps)."""
    for k in itertools.count():
        yield start + k / rate


def poisson_schedule(rate: float, start: float, rng: random.Random) -> Iterator[float]:
    """Due times of a Poisson process: independent exponential gaps of mean 1/rate."""
    due = start
    while True:
        yield due
        due += rng.expovariate(rate)


class Load:
    """Sends bodies at one level until stopped; the answers collect in `take()`."""

    def __init__(
        self,
        url: str,
        bodies: Sequence[bytes],
        headers: dict[str, str],
        level: Level,
        *,
        max_in_flight: int,
        poisson: bool = False,
        seed: int = 0,
        timeout_s: float = 60.0,
    ) -> None:
        self.url = url
        self.headers = headers
        self.level = level
        self.max_in_flight = max_in_flight
        self.poisson = poisson
        self.seed = seed
        self.timeout_s = timeout_s
        self.first_error: str | None = None
        self.waited = 0  # due requests that found max_in_flight outstanding and waited in the client
        self._bodies = itertools.cycle(bodies)
        self._samples: list[Sample] = []
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def take(self) -> list[Sample]:
        """The answers since the last call (one event loop: nothing is appended while this runs)."""
        taken, self._samples = self._samples, []
        return taken

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Stop sending; wait (up to DRAIN_S) for what is outstanding, so that the next level starts on an idle
        server. What is answered now is not measured."""
        self._stopping.set()
        if self._task is not None:
            await self._task

    async def _run(self) -> None:
        limit = int(self.level.value) if self.level.mode == "concurrency" else self.max_in_flight
        connector = aiohttp.TCPConnector(limit=limit, force_close=False)
        timeout = aiohttp.ClientTimeout(total=self.timeout_s)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            if self.level.mode == "concurrency":
                await asyncio.gather(*(self._closed_loop(session) for _ in range(limit)))
            else:
                await self._open_loop(session)

    async def _closed_loop(self, session: aiohttp.ClientSession) -> None:
        while not self._stopping.is_set():
            sent = time.monotonic()
            ok = await self._send(session, next(self._bodies))
            self._samples.append(Sample(sent, sent, time.monotonic(), ok))

    async def _open_loop(self, session: aiohttp.ClientSession) -> None:
        slots = asyncio.Semaphore(self.max_in_flight)
        start = time.monotonic()
        rate = self.level.value
        if self.poisson:
            due_times = poisson_schedule(rate, start, random.Random(self.seed))
        else:
            due_times = constant_schedule(rate, start)
        outstanding: set[asyncio.Task[None]] = set()
        for due in due_times:
            delay = due - time.monotonic()
            if delay > 0:
                try:
                    await asyncio.wait_for(self._stopping.wait(), delay)
                except asyncio.TimeoutError:
                    pass
            if self._stopping.is_set():
                break
            task = asyncio.get_running_loop().create_task(self._due(session, slots, due, next(self._bodies)))
            outstanding.add(task)
            task.add_done_callback(outstanding.discard)
        if outstanding:
            _, late = await asyncio.wait(outstanding, timeout=DRAIN_S)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)

    async def _due(self, session: aiohttp.ClientSession, slots: asyncio.Semaphore, due: float, body: bytes) -> None:
        if slots.locked():
            self.waited += 1
        async with slots:
            sent = time.monotonic()
            ok = await self._send(session, body)
        self._samples.append(Sample(due, sent, time.monotonic(), ok))

    async def _send(self, session: aiohttp.ClientSession, body: bytes) -> bool:
        ok, error = await send(session, self.url, body, self.headers)
        if error is not None and self.first_error is None:
            self.first_error = error
        return ok


async def send(
    session: aiohttp.ClientSession, url: str, body: bytes, headers: dict[str, str]
) -> tuple[bool, str | None]:
    """One request: whether it got a 2xx answer, and if not, its status and the start of its body (or the error)."""
    try:
        async with session.post(url, data=body, headers=headers) as response:
            answer = await response.read()
            if 200 <= response.status < 300:
                return True, None
            error = f"{response.status} {answer[:_ERROR_TEXT].decode('utf-8', 'replace')}"
    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
        error = f"{type(exc).__name__}: {exc}".rstrip(": ")
    return False, " ".join(error.split())
