"""GET /metrics against real servers: exact counts of known traffic, in one process and summed over gunicorn workers."""

from __future__ import annotations

import collections
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx2 as httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from starlette.testclient import TestClient

from scoring_runtime import create_app
from scoring_runtime.app.responses import NOT_FOUND_MESSAGE
from scoring_runtime.errors import RUN_FAILED_MESSAGE
from scoring_runtime.observability.metrics import CONTENT_TYPE
from tests.conftest import ServerFactory
from tests.helpers import SCRIPTS, Server

pytestmark = pytest.mark.slow

PROBES = ("/live", "/ready", "/v2/health/live", "/v2/health/ready")


class Page:
    """One scrape of /metrics, parsed with prometheus_client's own parser."""

    def __init__(self, text: str) -> None:
        self.samples = [sample for family in text_string_to_metric_families(text) for sample in family.samples]

    def named(self, name: str, **labels: str) -> list[Sample]:
        return [s for s in self.samples if s.name == name and labels.items() <= s.labels.items()]

    def value(self, name: str, **labels: str) -> float:
        """The sum of the samples named `name` that carry `labels`; the series must be there."""
        samples = self.named(name, **labels)
        assert samples, f"no {name} {labels}"
        return sum(sample.value for sample in samples)


def scrape(server: Server | TestClient) -> Page:
    response = server.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"] == CONTENT_TYPE
    return Page(response.text)


def status_class(response: httpx.Response) -> str:
    return f"{response.status_code // 100}xx"


def pids_until_both_workers_answered(server: Server, workers: int) -> tuple[int, set[int]]:
    """POST /score "0" until every worker has answered (bounded); returns the number sent and the pids."""
    pids: set[int] = set()
    sent = 0
    while len(pids) < workers and sent < 200:
        response = server.post("/score", content="0")
        assert response.status_code == 200
        pids.add(response.json()["pid"])
        sent += 1
    assert len(pids) == workers
    return sent, pids


def test_counts_match_the_traffic_sent(serve: ServerFactory, workers: int) -> None:
    server = serve("sleepy.py", workers=workers, env={"SCORING_TIMEOUT_MS": "2000", "SCORING_MAX_QUEUE": "0"})
    sent: collections.Counter[tuple[str, str]] = collections.Counter()

    def send(method: str, path: str, route: str, **kwargs: object) -> httpx.Response:
        response = server.request(method, path, **kwargs)
        sent[route, status_class(response)] += 1
        return response

    # Under gunicorn, until both workers have answered: the page must then sum what each of them counted.
    warm_up, _ = pids_until_both_workers_answered(server, workers)
    sent["/score", "2xx"] += warm_up
    for _ in range(3):
        assert send("POST", "/score", "/score", content="0").status_code == 200
    assert send("HEAD", "/score", "/score").status_code == 405
    assert send("POST", "/score", "/score", content="0", headers={"x-request-id": "x" * 200}).status_code == 431
    assert send("GET", f"/{uuid.uuid4().hex}", "other").status_code == 404
    assert send("GET", "/swagger.json", "/swagger.json").status_code == 200
    for probe in PROBES:
        assert send("GET", probe, probe).status_code == 200
    failed = send("POST", "/score", "/score", content="abc")  # float("abc") raises in run()
    assert (failed.status_code, failed.json()["message"]) == (500, RUN_FAILED_MESSAGE)
    timed_out = send("POST", "/score", "/score", content="2.6")
    assert (timed_out.status_code, timed_out.json()["message"]) == (500, "Scoring timeout after 2000 ms")
    # No queue: six at once are more than the workers' one run slot each, so some are turned away.
    with ThreadPoolExecutor(6) as pool:
        burst = list(pool.map(lambda _: send("POST", "/score", "/score", content="0.8"), range(6)))
    rejected = sum(response.status_code == 503 for response in burst)
    assert rejected >= 1 and all(response.status_code in (200, 503) for response in burst)
    fast_runs = sent["/score", "2xx"]

    # The timed-out run() (a sleep, which no exception interrupts) had its thread abandoned. When it returns, the
    # interrupt lands in it, so it never returns a result to measure; where calls are not interrupted (a tracer on
    # CPython 3.11: coverage measuring the server), it returns normally and is measured then.
    measured = 1 if "are not interrupted" in server.log() else 0
    scrapes = 0
    deadline = time.monotonic() + 15
    while True:
        page = scrape(server)
        scrapes += 1
        abandoned = (page.value("scoring_abandoned_runs_total"), page.value("scoring_abandoned_threads"))
        if abandoned == (1, 0) and page.value("scoring_run_duration_seconds_count") == fast_runs + measured:
            break
        if time.monotonic() > deadline:
            break
        time.sleep(0.2)
    sent["/metrics", "2xx"] += scrapes - 1  # a scrape is counted once it is answered, after its page was made

    assert (page.value("scoring_abandoned_runs_total"), page.value("scoring_abandoned_threads")) == (1, 0)
    assert page.value("scoring_run_duration_seconds_count") == fast_runs + measured
    assert page.value("scoring_run_duration_seconds_bucket", le="1.0") == fast_runs
    assert page.value("scoring_run_duration_seconds_bucket", le="2.5") == fast_runs
    assert page.value("scoring_run_duration_seconds_bucket", le="5.0") == fast_runs + measured
    assert 2.6 * measured <= page.value("scoring_run_duration_seconds_sum") < 2.6 * measured + fast_runs * 1.0
    assert page.value("scoring_queue_rejections_total") == rejected
    assert page.value("scoring_timeouts_total") == 1
    assert page.value("scoring_run_failures_total") == 1
    assert page.value("scoring_requests_in_flight") == 0
    for sample in page.named("scoring_requests_total"):
        route, cls = sample.labels["route"], sample.labels["status_class"]
        if route == "/" and cls == "2xx":
            assert sample.value >= 1  # the readiness wait of the test harness, retried on its own timeouts
        else:
            assert sample.value == sent[route, cls], (route, cls)
        counted = page.value("scoring_requests_total", route=route)
        assert page.value("scoring_request_duration_seconds_count", route=route) == counted
    assert {(s.labels["route"], s.labels["status_class"]) for s in page.named("scoring_requests_total")} >= set(sent)


def test_in_flight_while_run_is_busy_and_metrics_not_logged(serve: ServerFactory, workers: int) -> None:
    server = serve("sleepy.py", workers=workers)
    with ThreadPoolExecutor(2) as pool:
        busy = [pool.submit(server.post, "/score", content="1.5") for _ in range(2)]
        time.sleep(0.5)
        start = time.monotonic()
        page = scrape(server)
        # Answered on the event loop, not behind the run() calls (one of them may be waiting for the other).
        assert time.monotonic() - start < 1.0
        assert not any(future.done() for future in busy)
        assert page.value("scoring_requests_in_flight") == 2
        assert all(future.result().status_code == 200 for future in busy)
    assert scrape(server).value("scoring_requests_in_flight") == 0
    log = server.wait_for_log("POST /score 200")
    assert "POST /score 200" in log
    assert "GET /metrics" not in log


@pytest.mark.parametrize(
    ("workers", "preload"), [(1, False), (2, False), (2, True)], ids=["uvicorn", "gunicorn-2", "gunicorn-2-preload"]
)
def test_init_duration_and_the_scripts_own_metrics(serve: ServerFactory, workers: int, preload: bool) -> None:
    server = serve("metered.py", workers=workers, env={"WORKER_PRELOAD": str(preload).lower()})
    sent, pids = pids_until_both_workers_answered(server, workers)
    page = scrape(server)
    init = page.named("scoring_init_duration_seconds")
    assert len(init) == workers
    assert all(0.3 <= sample.value < 30 for sample in init)  # init() sleeps 0.3 s
    if workers > 1:
        # One per worker, each its own series, though under preload init() ran once, in the master.
        assert {int(sample.labels["pid"]) for sample in init} == pids
        assert server.process.pid not in pids
        if preload:
            assert len({sample.value for sample in init}) == 1
    else:
        assert "pid" not in init[0].labels
    # Metrics score.py keeps with prometheus_client's defaults are on the page too, summed over the workers.
    assert page.value("model_predictions_total") == sent


def test_preloaded_workers_count_in_their_own_files(serve: ServerFactory, tmp_path: Path) -> None:
    directory = tmp_path / "prometheus"  # the user's own directory: used, and left in place
    env = {"WORKER_PRELOAD": "true", "PROMETHEUS_MULTIPROC_DIR": str(directory)}
    server = serve("sleepy.py", workers=2, env=env)
    sent, pids = pids_until_both_workers_answered(server, 2)
    page = scrape(server)
    assert page.value("scoring_requests_total", route="/score", status_class="2xx") == sent
    assert page.value("scoring_run_duration_seconds_count") == sent
    files = [name.removesuffix(".db").rsplit("_", 1) for name in os.listdir(directory)]
    assert {int(pid) for _, pid in files} == pids  # none from the master, where init() ran
    assert {kind for kind, _ in files} == {"counter", "histogram", "gauge_livesum", "gauge_liveall"}
    server.stop()
    # The workers' live gauges are dropped when they exit; the user's directory and the counts stay. Dropped by
    # gunicorn's child_exit hook, which may still be at it when stop() returns: waited for, a bounded time.
    left = metric_files_once_live_gauges_are_gone(directory, timeout=10.0)
    assert {kind for kind, _ in left} == {"counter", "histogram"}, (left, pids, server.log()[-3000:])


def metric_files_once_live_gauges_are_gone(directory: Path, timeout: float) -> list[tuple[str, str]]:
    """The (kind, pid) of each metric file in `directory` once no live gauge's is left, or as they are at the
    timeout."""
    deadline = time.monotonic() + timeout
    while True:
        names = sorted(name.removesuffix(".db") for name in os.listdir(directory))
        files = [(kind, pid) for kind, _, pid in (name.rpartition("_") for name in names)]
        if not any(kind.startswith("gauge_live") for kind, _ in files) or time.monotonic() >= deadline:
            return files
        time.sleep(0.05)


@pytest.mark.parametrize("how", ["env", "flag"])
def test_metrics_can_be_turned_off(serve: ServerFactory, how: str) -> None:
    workers = 1 if how == "env" else 2
    args = ("--metrics", "false") if how == "flag" else ()
    server = serve("sleepy.py", *args, workers=workers, env={"SCORING_METRICS": "false"} if how == "env" else {})
    response = server.get("/metrics")
    assert (response.status_code, response.json()) == (404, {"message": NOT_FOUND_MESSAGE})
    assert server.post("/score", content="0").status_code == 200
    assert "Metrics of every worker" not in server.log()


def test_dead_workers_keep_their_counts_and_leave_the_live_gauges(serve: ServerFactory) -> None:
    server = serve("crash.py", workers=2)
    kept_in = re.search(r"Metrics of every worker are kept in (\S+)", server.log())
    assert kept_in is not None
    directory = Path(kept_in.group(1))
    pids: set[int] = set()
    answered = 0
    while len(pids) < 2 and answered < 200:
        pids.add(server.post("/score", content="ok").json()["pid"])
        answered += 1
    assert len(pids) == 2
    # One worker is stopped, another crashes in run(); gunicorn replaces both.
    stopped = min(pids)
    os.kill(stopped, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while server.log().count("init in ") < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    with pytest.raises(httpx.TransportError):
        server.post("/score", content="exit")
    while server.log().count("init in ") < 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.log().count("init in ") == 4

    page = scrape(server)
    assert page.value("scoring_requests_total", route="/score", status_class="2xx") == answered
    assert page.value("scoring_requests_in_flight") == 0  # the crashed worker's request went with it
    live = {int(sample.labels["pid"]) for sample in page.named("scoring_init_duration_seconds")}
    assert len(live) == 2 and stopped not in live
    assert directory.is_dir()
    server.stop()
    assert not directory.exists()  # a fresh directory per start, removed when the master exits


def test_only_the_process_that_made_the_directory_removes_it(tmp_path: Path) -> None:
    # A forked worker that exits by raising SystemExit unwinds through the block the master forked it in.
    program = """
import os
from scoring_runtime.observability.metrics import multiprocess_directory
child = -1
try:
    with multiprocess_directory() as directory:
        child = os.fork()
        if child == 0:
            raise SystemExit(0)
        os.waitpid(child, 0)
        print(os.path.isdir(directory), os.environ["PROMETHEUS_MULTIPROC_DIR"] == directory)
finally:
    if child == 0:
        os._exit(0)
print(os.path.isdir(directory), "PROMETHEUS_MULTIPROC_DIR" in os.environ)
"""
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    done = subprocess.run([sys.executable, "-c", program], env=env, capture_output=True, text=True, timeout=60)
    assert done.stdout.split() == ["True", "True", "False", "False"], done.stderr


def test_prefixed_routes_are_counted_under_their_own_names() -> None:
    app = create_app(SCRIPTS / "returns.py", service_path_prefix="/models/m")
    with TestClient(app) as client:
        for path in ("/models/m/", "/", "/models/m/swagger.json", "/models/m/metrics", "/models/m/live"):
            client.get(path)
        assert client.post("/models/m/score", content="int").json() == 7
        assert client.get("/metrics", headers={"x-request-id": "x" * 200}).status_code == 200  # scrapers never 431
        page = scrape(client)
    assert page.value("scoring_requests_total", route="/", status_class="2xx") == 2
    assert page.value("scoring_requests_total", route="/swagger.json", status_class="2xx") == 1
    assert page.value("scoring_requests_total", route="/score", status_class="2xx") == 1
    assert page.value("scoring_requests_total", route="other", status_class="4xx") == 2
    assert page.value("scoring_requests_total", route="/metrics", status_class="2xx") == 1
    routes = {sample.labels["route"] for sample in page.named("scoring_requests_total")}
    assert routes == {"/", "/score", "/swagger.json", "/docs", "/metrics", "other", *PROBES}
