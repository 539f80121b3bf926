"""The per-request series kept as plain numbers: recording one request is a few integer additions.

prometheus-client's own values cost about 5 microseconds per request here (a lock and several method layers for each
of a gauge increment and decrement, a counter and two histograms), several percent of a trivial request. So requests
by status class, request durations, requests in flight and run() durations are counted in plain Python numbers and
turned into metric families only when a page is made (`PlainSeries.collect`, prometheus-client's custom collector
interface). Under gunicorn (multiprocess mode) the values must reach the shared files, so each recorder also keeps
what it has not yet written there, and `FileSync` writes it once per event loop pass.
"""

from __future__ import annotations

import asyncio
import threading
from bisect import bisect_left
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prometheus_client import Counter, Gauge, Histogram
    from prometheus_client.metrics_core import Metric

# From a small model's millisecond to a large one's minute.
DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
STATUS_CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx")


class Durations:
    """A histogram as bucket counts and a sum; `observe` may be called from any thread.

    Always locked: an uncontended lock costs about 50 ns, and one code path is simpler than a locked and a bare one.
    """

    __slots__ = ("_lock", "counts", "samples", "synced_counts", "synced_total", "total")

    def __init__(self, keep_samples: bool = False) -> None:
        # One slot per bucket and a last one for +Inf, not cumulative.
        self.counts = [0] * (len(DURATION_BUCKETS) + 1)
        self.total = 0.0
        self._lock = threading.Lock()
        # What FileSync has written to the multiprocess files so far (gunicorn only).
        self.synced_counts = list(self.counts)
        self.synced_total = 0.0
        # The observations themselves, when FileSync can only replay them one by one (see FileSync).
        self.samples: list[float] | None = [] if keep_samples else None

    def observe(self, seconds: float) -> None:
        with self._lock:
            self.counts[bisect_left(DURATION_BUCKETS, seconds)] += 1
            self.total += seconds
            if self.samples is not None:
                self.samples.append(seconds)

    def take_unsynced(self) -> tuple[list[int], float, list[float]]:
        """Bucket counts and sum added since the last call, and the samples behind them if they are kept."""
        with self._lock:
            counts = list(self.counts)
            deltas = [new - old for new, old in zip(counts, self.synced_counts, strict=True)]
            total = self.total - self.synced_total
            self.synced_counts, self.synced_total = counts, self.total
            samples = self.samples or []
            if self.samples is not None:
                self.samples = []
            return deltas, total, samples

    def snapshot(self) -> tuple[list[tuple[str, float]], float]:
        """The cumulative buckets, by their `le` text, and the sum: one consistent reading."""
        from prometheus_client.utils import floatToGoString

        with self._lock:
            counts, total = list(self.counts), self.total
        # The `le` values exactly as prometheus-client's own Histogram writes them.
        bounds = [*(floatToGoString(bound) for bound in DURATION_BUCKETS), "+Inf"]  # type: ignore[no-untyped-call]
        running = 0
        buckets = []
        for bound, count in zip(bounds, counts, strict=True):
            running += count
            buckets.append((bound, float(running)))
        return buckets, total


class RouteRecorder:
    """The series of one route. Called on the event loop only."""

    __slots__ = ("_sync", "by_class", "durations", "in_flight", "label", "synced_by_class", "tracks_in_flight")

    def __init__(self, label: str, tracks_in_flight: bool, sync: FileSync | None) -> None:
        self.label = label
        self.tracks_in_flight = tracks_in_flight
        # Indexed by status // 100; status 0 means no response was started, which the server answers with a 500.
        self.by_class = [0] * 6
        self.synced_by_class = [0] * 6
        self.durations = Durations(keep_samples=sync is not None and sync.replays)
        self.in_flight = 0
        self._sync = sync

    def enter(self) -> None:
        if self.tracks_in_flight:
            self.in_flight += 1
            if self._sync is not None:
                self._sync.mark(self)

    def leave(self, status: int, seconds: float) -> None:
        if self.tracks_in_flight:
            self.in_flight -= 1
        self.count(status, seconds)

    def count(self, status: int, seconds: float) -> None:
        """Also for a request answered without entering the app (a 431 for a request id that is too long)."""
        self.by_class[status // 100 if status < 600 else 5] += 1
        self.durations.observe(seconds)
        if self._sync is not None:
            self._sync.mark(self)

    def class_counts(self, by_class: Sequence[int]) -> Iterator[tuple[str, int]]:
        yield STATUS_CLASSES[0], by_class[1]
        yield STATUS_CLASSES[1], by_class[2]
        yield STATUS_CLASSES[2], by_class[3]
        yield STATUS_CLASSES[3], by_class[4]
        yield STATUS_CLASSES[4], by_class[5] + by_class[0]


class PlainSeries:
    """The collector that turns the recorders into metric families, in one process (not under gunicorn)."""

    def __init__(self, recorders: Sequence[RouteRecorder], run_durations: Durations, help_texts: dict[str, str]):
        self.recorders = recorders
        self.run_durations = run_durations
        self.help = help_texts

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

        requests = CounterMetricFamily("scoring_requests", self.help["requests"], labels=("route", "status_class"))
        durations = HistogramMetricFamily(
            "scoring_request_duration_seconds", self.help["request_seconds"], labels=("route",)
        )
        in_flight = 0
        for recorder in self.recorders:
            for status_class, count in recorder.class_counts(recorder.by_class):
                requests.add_metric((recorder.label, status_class), count)
            durations.add_metric((recorder.label,), *recorder.durations.snapshot())
            in_flight += recorder.in_flight
        yield requests
        yield durations
        yield GaugeMetricFamily("scoring_requests_in_flight", self.help["in_flight"], value=in_flight)
        run = HistogramMetricFamily("scoring_run_duration_seconds", self.help["run_seconds"])
        run.add_metric((), *self.run_durations.snapshot())
        yield run


class FileSync:
    """Under gunicorn: writes what the recorders counted to prometheus-client's multiprocess values, once per event
    loop pass in which something was recorded, once a second, and before a page is made. A worker that crashes loses
    at most the counts of its last pass.

    Each write to those values takes a lock, a getpid() system call and a write to a memory-mapped file, so the
    counts of a pass are added at once: a counter by its delta, a histogram by the delta of each bucket and of its
    sum. prometheus-client has no public call for the histogram's part (`observe` takes one value), so its bucket
    and sum values are used directly when they are there (checked here, and by the test suite through the page);
    with a prometheus-client that no longer has them, the observations are kept and replayed one by one.
    """

    def __init__(
        self,
        routes: Sequence[str],
        requests: Counter,
        request_seconds: Histogram,
        in_flight: Gauge,
        run_seconds: Histogram,
    ) -> None:
        # Every series is on the page from the start, at zero, as in one process.
        for route in routes:
            request_seconds.labels(route)
            for status_class in STATUS_CLASSES:
                requests.labels(route, status_class)
        self._requests = requests
        self._request_seconds = request_seconds
        self._in_flight = in_flight
        self._run_seconds = run_seconds
        self.replays = not _has_bucket_values(run_seconds)
        self.run_durations = Durations(keep_samples=self.replays)
        self._marked: set[RouteRecorder] = set()
        self._scheduled = False

    def mark(self, recorder: RouteRecorder) -> None:
        self._marked.add(recorder)
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self.write)

    def write(self) -> None:
        self._scheduled = False
        marked, self._marked = self._marked, set()
        for recorder in marked:
            now = list(recorder.by_class)
            deltas = [new - old for new, old in zip(now, recorder.synced_by_class, strict=True)]
            recorder.synced_by_class = now
            for status_class, delta in recorder.class_counts(deltas):
                if delta:
                    self._requests.labels(recorder.label, status_class).inc(delta)
            _add(self._request_seconds.labels(recorder.label), *recorder.durations.take_unsynced())
            if recorder.tracks_in_flight:
                self._in_flight.set(recorder.in_flight)
        _add(self._run_seconds, *self.run_durations.take_unsynced())


def _has_bucket_values(histogram: Histogram) -> bool:
    buckets = getattr(histogram, "_buckets", None)
    return isinstance(buckets, list) and len(buckets) == len(DURATION_BUCKETS) + 1 and hasattr(histogram, "_sum")


def _add(histogram: Histogram, counts: list[int], total: float, samples: list[float]) -> None:
    if samples:
        for seconds in samples:
            histogram.observe(seconds)
        return
    if not any(counts):
        return
    for value, count in zip(histogram._buckets, counts, strict=True):
        if count:
            value.inc(count)
    histogram._sum.inc(total)
