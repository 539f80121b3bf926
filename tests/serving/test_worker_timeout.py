"""Under gunicorn, a run() still running after WORKER_TIMEOUT gets its worker replaced; other workers keep serving."""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor

import httpx2 as httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import ServerFactory

WORKER_RESTARTING = {"message": "The worker is being replaced. Retry the request."}


@pytest.mark.slow
def test_a_worker_with_a_stuck_run_is_replaced(serve: ServerFactory) -> None:
    server = serve("sleepy.py", workers=2, env={"WORKER_TIMEOUT": "2"})
    stop_at = time.monotonic() + 8

    def steady_traffic() -> list[httpx.Response]:
        # Calls shorter than the timeout, landing on either worker, while the other one is stuck.
        answers = []
        while time.monotonic() < stop_at:
            answers.append(server.post("/score", content="0.5"))
        return answers

    with ThreadPoolExecutor(3) as pool:
        started = time.monotonic()
        stuck: Future[httpx.Response] = pool.submit(server.post, "/score", content="60")
        time.sleep(0.2)
        traffic = [pool.submit(steady_traffic) for _ in range(2)]
        answer = stuck.result()
        answered_after = time.monotonic() - started
        answers = [response for future in traffic for response in future.result()]

    assert answer.status_code == 500
    assert answer.json() == {
        "message": "run() did not finish within WORKER_TIMEOUT (2 s); the worker is being replaced"
    }
    assert answer.headers["x-ms-run-function-failed"] == "True"
    assert 2.0 <= answered_after < 5.0
    # Requests that had queued behind the stuck call are told to retry; every other one is served.
    assert answers
    for response in answers:
        if response.status_code == 503:
            assert response.json() == WORKER_RESTARTING and response.headers["retry-after"] == "1"
        else:
            assert response.status_code == 200, response.text
    assert sum(response.status_code == 200 for response in answers) >= 4

    log = server.log()
    assert "1 run() call(s) still running after WORKER_TIMEOUT (2 s); replacing worker" in log
    deadline = time.monotonic() + 15
    while server.log().count("ready for serving traffic") < 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert server.log().count("ready for serving traffic") == 3  # two at start, one replacement
    assert server.process.poll() is None
    assert all(server.post("/score", content="0").status_code == 200 for _ in range(10))
    # The replaced worker's counts survive it.
    families = text_string_to_metric_families(server.get("/metrics").text)
    timeouts = [s.value for f in families for s in f.samples if s.name == "scoring_timeouts_total"]
    assert timeouts == [1.0]


@pytest.mark.slow
def test_a_worker_whose_run_holds_the_gil_is_replaced(serve: ServerFactory) -> None:
    # With the GIL held the worker cannot even answer its client; gunicorn sees no heartbeat and replaces it.
    server = serve("gil_hog.py", "--worker_timeout", "2", workers=2)
    started = time.monotonic()
    with pytest.raises(httpx.TransportError):
        server.post("/score", content="hog")
    assert time.monotonic() - started < 10
    deadline = time.monotonic() + 15
    while server.log().count("init in ") < 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert server.log().count("init in ") == 3
    assert "WORKER TIMEOUT" in server.log()
    assert all(server.post("/score", content="ok").status_code == 200 for _ in range(10))
