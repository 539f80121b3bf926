"""Measurement windows and perf_analyzer's stability rule.

A load level is measured in windows of a fixed length. It is stable once the last STABLE_WINDOWS windows agree: the
largest throughput is within the tolerance of the smallest, and so is the chosen latency percentile (perf_analyzer's
`--stability-percentage`, 10 %, over 3 windows, at most `--max-trials` windows). What is reported for a level is
those last windows taken together.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

STABLE_WINDOWS = 3
PERCENTILES = (50.0, 90.0, 95.0, 99.0, 99.9)


@dataclass(frozen=True)
class Sample:
    """One answered (or failed) request: when it was meant to be sent, when it was sent, when it was answered."""

    scheduled: float
    sent: float
    done: float
    ok: bool

    @property
    def latency(self) -> float:
        # From the scheduled time: time a request spent waiting in the client for a free slot is latency the user
        # would have seen (no coordinated omission). In concurrency mode the two are the same.
        return self.done - self.scheduled


@dataclass(frozen=True)
class Window:
    start: float
    end: float
    samples: tuple[Sample, ...]  # the requests answered within [start, end)

    @property
    def seconds(self) -> float:
        return self.end - self.start

    @property
    def throughput(self) -> float:
        return sum(1 for sample in self.samples if sample.ok) / self.seconds

    def latency(self, percentile: float | None) -> float | None:
        return latency_of(self.samples, percentile)


def percentile_of(values: Sequence[float], percentile: float) -> float:
    """The value below which `percentile` % of `values` fall: linear interpolation between the closest ranks (numpy's
    default method), so that a short window's p99 is not just its largest value rounded."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no values")
    rank = (len(ordered) - 1) * percentile / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def latency_of(samples: Sequence[Sample], percentile: float | None) -> float | None:
    """The mean latency (percentile None, perf_analyzer's default) or a percentile of the successful requests."""
    values = [sample.latency for sample in samples if sample.ok]
    if not values:
        return None
    if percentile is None:
        return sum(values) / len(values)
    return percentile_of(values, percentile)


def within(values: Sequence[float], tolerance: float) -> bool:
    """max/min within 1 + tolerance, perf_analyzer's comparison; all zero counts as agreeing."""
    if max(values) == 0:
        return True
    return min(values) > 0 and max(values) / min(values) <= 1.0 + tolerance


def is_stable(windows: Sequence[Window], percentile: float | None, tolerance: float) -> bool:
    if len(windows) < STABLE_WINDOWS:
        return False
    last = windows[-STABLE_WINDOWS:]
    latencies = [window.latency(percentile) for window in last]
    if any(latency is None for latency in latencies):
        return False  # a window in which nothing succeeded says nothing about latency
    throughputs = [window.throughput for window in last]
    return within(throughputs, tolerance) and within([value for value in latencies if value is not None], tolerance)


@dataclass(frozen=True)
class Measured:
    """A level's reported windows, taken together."""

    start: float
    end: float
    total: int
    success: int
    mean_s: float | None
    percentiles_s: dict[float, float]  # empty when nothing succeeded

    @property
    def seconds(self) -> float:
        return self.end - self.start

    @property
    def throughput(self) -> float:
        return self.success / self.seconds if self.seconds > 0 else 0.0

    @property
    def success_rate(self) -> float:
        return self.success / self.total if self.total else 0.0


def combine(windows: Sequence[Window]) -> Measured:
    samples = [sample for window in windows for sample in window.samples]
    good = [sample.latency for sample in samples if sample.ok]
    return Measured(
        start=windows[0].start,
        end=windows[-1].end,
        total=len(samples),
        success=len(good),
        mean_s=sum(good) / len(good) if good else None,
        percentiles_s={p: percentile_of(good, p) for p in PERCENTILES} if good else {},
    )
