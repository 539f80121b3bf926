"""The per-request series kept as plain numbers read exactly as prometheus-client's own metrics would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from scoring_runtime.observability.metric_values import DURATION_BUCKETS, STATUS_CLASSES
from scoring_runtime.observability.metrics import _HELP, Metrics

ROOT = Path(__file__).resolve().parents[2]
ROUTES = {"/score": "/score", "/": "/", "/models/m/score": "/score"}
# Status 0 (no response started) is answered 500 by the server; 431 is counted without entering the app.
REQUESTS = [
    ("/score", 200, 0.0004),
    ("/score", 200, 0.001),  # on a bucket's bound: counted in that bucket, as prometheus-client does
    ("/models/m/score", 200, 0.0049),
    ("/score", 500, 0.3),
    ("/score", 0, 2.0),
    ("/score", 503, 0.00001),
    ("/", 200, 0.0001),
    ("/nowhere", 404, 0.002),
    ("/score", 431, 75.0),  # past the last bound: only in +Inf
]
RUNS_MS = [0.2, 5.0, 2600.0, 61_000.0]


def families(
    text: str, names: set[str]
) -> dict[str, tuple[str, str, list[tuple[str, tuple[tuple[str, str], ...], float]]]]:
    found = {}
    for family in text_string_to_metric_families(text):
        if family.name in names:
            samples = sorted((s.name, tuple(sorted(s.labels.items())), s.value) for s in family.samples)
            found[family.name] = (family.documentation, family.type, samples)
    return found


def native_page() -> str:
    """The same traffic recorded through prometheus-client's own metric classes."""
    registry = CollectorRegistry()
    requests = Counter("scoring_requests", _HELP["requests"], ("route", "status_class"), registry=registry)
    seconds = Histogram(
        "scoring_request_duration_seconds",
        _HELP["request_seconds"],
        ("route",),
        registry=registry,
        buckets=DURATION_BUCKETS,
    )
    in_flight = Gauge("scoring_requests_in_flight", _HELP["in_flight"], registry=registry)
    runs = Histogram("scoring_run_duration_seconds", _HELP["run_seconds"], registry=registry, buckets=DURATION_BUCKETS)
    for route in ("/", "/score", "other"):
        seconds.labels(route)
        for status_class in STATUS_CLASSES:
            requests.labels(route, status_class)
    for path, status, elapsed in REQUESTS:
        route = ROUTES.get(path, "other")
        requests.labels(route, f"{status // 100 if status else 5}xx").inc()
        seconds.labels(route).observe(elapsed)
    in_flight.set(1)
    for elapsed_ms in RUNS_MS:
        runs.observe(elapsed_ms / 1000.0)
    return generate_latest(registry).decode()


def record(metrics: Metrics) -> None:
    for path, status, elapsed in REQUESTS:
        recorder = metrics.route(path)
        if status == 431:
            recorder.count(status, elapsed)
        else:
            recorder.enter()
            recorder.leave(status, elapsed)
    metrics.route("/score").enter()  # still running when the page is made
    for elapsed_ms in RUNS_MS:
        metrics.run_finished(elapsed_ms)


def test_the_page_matches_prometheus_clients_own_metrics() -> None:
    metrics = Metrics(ROUTES)
    record(metrics)
    names = {"scoring_requests", "scoring_request_duration_seconds", "scoring_requests_in_flight"}
    names.add("scoring_run_duration_seconds")
    ours = families(metrics.page().decode(), names)
    assert set(ours) == names
    assert ours == families(native_page(), names)


MULTIPROCESS_PROGRAM = """
import asyncio, sys
from scoring_runtime.observability import metric_values
from scoring_runtime.observability.metrics import Metrics
from tests.observability.test_metric_values import RUNS_MS, record

if sys.argv[1] == "replay":
    metric_values._has_bucket_values = lambda histogram: False

async def main():
    metrics = Metrics(ROUTES)
    record(metrics)
    await asyncio.sleep(0)  # the end of the loop pass writes what it counted
    sys.stdout.write(metrics.page().decode())

from tests.observability.test_metric_values import ROUTES
asyncio.run(main())
"""


@pytest.mark.parametrize("how", ["bucket-values", "replay"])
def test_the_multiprocess_files_get_the_same_counts(how: str, tmp_path: Path) -> None:
    # Under gunicorn the counts of a loop pass are added to prometheus-client's files at once (or replayed).
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", MULTIPROCESS_PROGRAM, how], env=env, capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    names = {"scoring_requests", "scoring_request_duration_seconds", "scoring_run_duration_seconds"}
    ours = families(done.stdout, names)
    native = families(native_page(), names)
    # The files keep floats: compare sums to the last bit they can hold.
    assert ours.keys() == native.keys() == names
    for name in names:
        ours_samples = [(n, labels, round(value, 9)) for n, labels, value in ours[name][2]]
        native_samples = [(n, labels, round(value, 9)) for n, labels, value in native[name][2]]
        assert ours_samples == native_samples, name
