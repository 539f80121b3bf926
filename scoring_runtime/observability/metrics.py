"""Prometheus metrics for GET /metrics: the series, cheap recording per request, and the gunicorn multiprocess set-up.

prometheus_client decides when it is first imported whether values live in memory or in per-process files
(multiprocess mode, chosen by PROMETHEUS_MULTIPROC_DIR). The gunicorn master sets that directory before it forks, so
this module imports prometheus_client only when metrics are created, never at import time.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING

from scoring_runtime.errors import HTTPError, RunFailed, ScoringTimeout, WorkerTimeout
from scoring_runtime.observability.metric_values import (
    DURATION_BUCKETS as BUCKETS,
    Durations,
    FileSync,
    PlainSeries,
    RouteRecorder,
)

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

logger = logging.getLogger("azmlinfsrv")

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# The classic text format: what every Prometheus version and scraper reads.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
OTHER_ROUTE = "other"
SCORE_ROUTE = "/score"
_HELP = {
    "requests": "Requests answered, by route and status class.",
    "request_seconds": "Time from receiving a request to sending the end of its response, by route.",
    "in_flight": "/score requests received and not yet answered: running, waiting for a run slot, or being read.",
    "run_seconds": "Time of each run() call that returned.",
}


class Metrics:
    """The server's series in this process, and the /metrics page: this worker's, or every worker's under gunicorn."""

    def __init__(self, routes: Mapping[str, str]) -> None:
        """`routes` maps each path served to its route label; any other path is counted as `other`."""
        from prometheus_client import (
            REGISTRY,
            CollectorRegistry,
            Counter,
            Gauge,
            Histogram,
            disable_created_metrics,
            generate_latest,
        )

        self._generate = generate_latest
        multiprocess = bool(os.environ.get(MULTIPROC_ENV))
        registry: CollectorRegistry | None
        if multiprocess:
            from prometheus_client.multiprocess import MultiProcessCollector

            # Values go to this worker's files; every scrape sums the files of all workers, dead ones included.
            registry = None
            os.makedirs(os.environ[MULTIPROC_ENV], exist_ok=True)
            self._page = CollectorRegistry()
            MultiProcessCollector(self._page)  # type: ignore[no-untyped-call]
        else:
            # Multiprocess mode has no `_created` series; without them here too the page has one shape in both modes.
            disable_created_metrics()  # type: ignore[no-untyped-call]
            registry = self._page = CollectorRegistry()
            # The default registry too: process and Python figures, and metrics score.py registers itself.
            registry.register(REGISTRY)

        # The per-request series are plain numbers (see metric_values); only the multiprocess files need real ones.
        labels = sorted({*routes.values(), OTHER_ROUTE})
        self._sync: FileSync | None = None
        if multiprocess:
            self._sync = FileSync(
                labels,
                Counter("scoring_requests", _HELP["requests"], ("route", "status_class"), registry=None),
                Histogram(
                    "scoring_request_duration_seconds",
                    _HELP["request_seconds"],
                    ("route",),
                    registry=None,
                    buckets=BUCKETS,
                ),
                Gauge("scoring_requests_in_flight", _HELP["in_flight"], registry=None, multiprocess_mode="livesum"),
                Histogram("scoring_run_duration_seconds", _HELP["run_seconds"], registry=None, buckets=BUCKETS),
            )
            self._run_durations = self._sync.run_durations
        else:
            self._run_durations = Durations()
        recorders = {label: RouteRecorder(label, label == SCORE_ROUTE, self._sync) for label in labels}
        self._routes = {path: recorders[label] for path, label in routes.items()}
        self._other = recorders[OTHER_ROUTE]
        if not multiprocess:
            assert registry is not None
            registry.register(PlainSeries(list(recorders.values()), self._run_durations, _HELP))
        self.queue_rejections = Counter(
            "scoring_queue_rejections",
            "/score requests refused with 503 because every run slot was busy and the wait queue was full.",
            registry=registry,
        )
        self.timeouts = Counter(
            "scoring_timeouts",
            "/score requests answered 500 after SCORING_TIMEOUT_MS, or after WORKER_TIMEOUT under gunicorn.",
            registry=registry,
        )
        self.run_failures = Counter("scoring_run_failures", "run() calls that raised an exception.", registry=registry)
        self.abandoned_runs = Counter(
            "scoring_abandoned_runs",
            "Timed-out run() calls that did not stop when interrupted, whose threads were given up for new ones.",
            registry=registry,
        )
        self.abandoned_threads = Gauge(
            "scoring_abandoned_threads",
            "Threads of abandoned run() calls that are still running (stuck).",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.batches = Counter(
            "scoring_model_batches",
            "Calls of a model served without a script, each scoring one request or several that waited together.",
            registry=registry,
        )
        self.batched_requests = Counter(
            "scoring_model_batched_requests",
            "Requests those calls scored: over scoring_model_batches_total, the mean batch size.",
            registry=registry,
        )
        self.init_seconds = Gauge(
            "scoring_init_duration_seconds",
            "Time init() took for the script this process serves.",
            registry=registry,
            multiprocess_mode="liveall",
        )

    def route(self, path: str) -> RouteRecorder:
        return self._routes.get(path, self._other)

    def run_finished(self, elapsed_ms: float) -> None:
        """On a run thread."""
        self._run_durations.observe(elapsed_ms / 1000.0)

    def batch_finished(self, size: int) -> None:
        """On a run thread (prometheus_client's values are locked)."""
        self.batches.inc()
        self.batched_requests.inc(size)

    def sync(self) -> None:
        """Under gunicorn, write what is counted to the multiprocess files now (on the event loop)."""
        if self._sync is not None:
            self._sync.write()

    def scoring_failed(self, error: HTTPError) -> None:
        if isinstance(error, (ScoringTimeout, WorkerTimeout)):
            self.timeouts.inc()
        elif isinstance(error, RunFailed):
            self.run_failures.inc()

    def run_abandoned(self, alive: int, new: bool) -> None:
        """RunThreads.on_abandoned: on the event loop or a run thread (prometheus_client's values are locked)."""
        if new:
            self.abandoned_runs.inc()
        self.abandoned_threads.set(alive)

    def page(self) -> bytes:
        self.sync()
        return self._generate(self._page)


@contextmanager
def multiprocess_directory() -> Iterator[str]:
    """PROMETHEUS_MULTIPROC_DIR for a gunicorn master and its workers, set in the environment they all share.

    The user's directory when set (kept afterwards), or else a fresh private one, removed when the master leaves.
    """
    given = os.environ.get(MULTIPROC_ENV)
    if given:
        os.makedirs(given, exist_ok=True)
        if os.listdir(given):
            logger.warning("%s %s is not empty: what earlier runs left in it is counted too", MULTIPROC_ENV, given)
        _import_for_worker_exits()
        yield given
        return
    directory = tempfile.mkdtemp(prefix="scoring_runtime-metrics-")
    os.environ[MULTIPROC_ENV] = directory
    _import_for_worker_exits()
    master = os.getpid()
    try:
        yield directory
    finally:
        # Workers are forked inside this block, and one that exits by raising SystemExit (a failed boot) unwinds
        # through it too: only the master cleans up.
        if os.getpid() == master:
            del os.environ[MULTIPROC_ENV]
            shutil.rmtree(directory, ignore_errors=True)


def _import_for_worker_exits() -> None:
    """What worker_exited needs, imported in the master before it forks and once the directory is in the environment
    (prometheus_client picks its multiprocess values at import): worker_exited runs in gunicorn's SIGCHLD handler,
    where an import can land in the middle of one the master is making (seen at prometheus-client 0.20: "partially
    initialized module prometheus_client.metrics"), which left a dead worker's live gauges counted."""
    from prometheus_client import multiprocess  # noqa: F401


def worker_exited(pid: int) -> None:
    """Drop a dead worker's live gauges (in flight, init time); its counts stay in the totals."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
