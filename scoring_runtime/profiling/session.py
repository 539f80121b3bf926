"""One profile's load: the warm-up, then each level measured window by window until stable (or out of trials)."""

from __future__ import annotations

import asyncio
import http.client
import itertools
import time
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import aiohttp
import psutil

from scoring_runtime.profiling.errors import ProfileError
from scoring_runtime.profiling.load import Level, Load, send
from scoring_runtime.profiling.windows import STABLE_WINDOWS, Measured, Window, combine, is_stable

Progress = Callable[[str], None]
INIT_METRIC = "scoring_init_duration_seconds"


@dataclass(frozen=True)
class Plan:
    url: str  # the scoring route's full URL
    bodies: Sequence[bytes]
    headers: dict[str, str]
    levels: Sequence[Level]
    interval_s: float
    max_trials: int
    tolerance: float
    percentile: float  # the latency the stability rule compares and the latency target is read at
    warmup: int
    max_in_flight: int
    poisson: bool
    seed: int
    timeout_s: float


@dataclass(frozen=True)
class LevelResult:
    level: Level
    windows: tuple[Window, ...]  # every window measured, the reported ones last
    stable: bool
    measured: Measured  # the last STABLE_WINDOWS windows together
    client_cpu: float  # cores this process used over the reported windows: the load generator's own cost
    waited: int  # rate mode: due requests that waited in the client for one of max_in_flight slots
    first_error: str | None


def _own_cpu_seconds() -> float:
    times = psutil.Process().cpu_times()
    return times.user + times.system


async def warm_up(plan: Plan) -> None:
    """A few requests one after another: imports, caches and connections settle before anything is measured. If
    every one fails, the profile stops here with the first answer, rather than measuring failures."""
    if plan.warmup <= 0:
        return
    failures = 0
    first: str | None = None
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=plan.timeout_s)) as session:
        for body in itertools.islice(itertools.cycle(plan.bodies), plan.warmup):
            ok, error = await send(session, plan.url, body, plan.headers)
            if not ok:
                failures += 1
                first = first or error
    if failures == plan.warmup:
        raise ProfileError(f"every request failed ({plan.warmup} warm-up requests); the first answer: {first}")


async def measure(plan: Plan, level: Level, progress: Progress) -> LevelResult:
    load = Load(
        plan.url,
        plan.bodies,
        plan.headers,
        level,
        max_in_flight=plan.max_in_flight,
        poisson=plan.poisson,
        seed=plan.seed,
        timeout_s=plan.timeout_s,
    )
    load.start()
    windows: list[Window] = []
    cpu_marks = [_own_cpu_seconds()]
    start = time.monotonic()
    try:
        for trial in range(1, plan.max_trials + 1):
            # Window ends are fixed from the level's start: the time taken to note a window does not shift the next.
            await asyncio.sleep(max(0.0, start + plan.interval_s - time.monotonic()))
            end = time.monotonic()
            windows.append(Window(start, end, tuple(load.take())))
            cpu_marks.append(_own_cpu_seconds())
            stable = is_stable(windows, plan.percentile, plan.tolerance)
            progress(_window_line(level, trial, windows[-1], plan, stable))
            start = end
            if stable:
                break
    finally:
        await load.stop()
    reported = windows[-STABLE_WINDOWS:]
    measured = combine(reported)
    client_cpu = (cpu_marks[-1] - cpu_marks[-1 - len(reported)]) / measured.seconds
    return LevelResult(level, tuple(windows), stable, measured, client_cpu, load.waited, load.first_error)


def _window_line(level: Level, trial: int, window: Window, plan: Plan, stable: bool) -> str:
    latency = window.latency(plan.percentile)
    name = f"p{plan.percentile:g}"
    shown = f"{latency * 1000:.1f} ms" if latency is not None else "-"
    failed = sum(1 for sample in window.samples if not sample.ok)
    note = "stable" if stable else ("not stable, last try" if trial == plan.max_trials else "")
    parts = [f"{level.label:>8} window {trial}/{plan.max_trials}", f"{window.throughput:.1f} req/s", f"{name} {shown}"]
    parts += [f"{failed} failed"] if failed else []
    parts += [note] if note else []
    return ", ".join(parts)


def init_seconds(base_url: str) -> float | None:
    """init()'s duration from the server's /metrics (the longest of its workers'), or None with metrics off."""
    parts = urllib.parse.urlsplit(base_url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=5.0)
    try:
        connection.request("GET", "/metrics")
        response = connection.getresponse()
        text = response.read().decode("utf-8", "replace") if response.status == 200 else ""
    except OSError:
        return None
    finally:
        connection.close()
    return init_seconds_of(text)


def init_seconds_of(text: str) -> float | None:
    """The largest `scoring_init_duration_seconds` sample of a Prometheus page (one per gunicorn worker)."""
    values = []
    for line in text.splitlines():
        head, _, value = line.rpartition(" ")
        if head.split("{")[0].strip() == INIT_METRIC:
            try:
                values.append(float(value))
            except ValueError:
                continue
    return max(values) if values else None
