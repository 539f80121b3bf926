"""Liveness and readiness probes, and the graceful drain on SIGTERM, against real servers."""

from __future__ import annotations

import os
import re
import signal
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import uvicorn
from starlette.testclient import TestClient

from scoring_runtime import create_app
from scoring_runtime.serving.server import DrainingServer
from tests.conftest import ServerFactory
from tests.helpers import SCRIPTS, Server

PROBES = {"/live": {"live": True}, "/v2/health/live": {"live": True}}
PROBES |= {"/ready": {"ready": True}, "/v2/health/ready": {"ready": True}}


def _sleeping(server: Server, seconds: str) -> set[str]:
    """The pids of the workers whose run() has printed that it started sleeping `seconds`."""
    return set(re.findall(rf"\[(\d+)\] azmlinfsrv.print - sleeping {seconds}s in run\(\)", server.log()))


@pytest.mark.slow
def test_probes_answer_while_run_is_busy_and_are_not_logged(serve: ServerFactory, workers: int) -> None:
    server = serve("sleepy.py", workers=workers)
    with ThreadPoolExecutor(8) as pool:
        # Requests until every worker is inside a run() (a request may land behind another on the same worker):
        # whichever worker answers a probe then is busy.
        busy = []
        deadline = time.monotonic() + 4
        while len(_sleeping(server, "6")) < workers and time.monotonic() < deadline:
            busy.append(pool.submit(server.post, "/score", content="6"))
            time.sleep(0.3)
        assert len(_sleeping(server, "6")) == workers
        for path, body in PROBES.items():
            response = server.get(path, headers={"x-request-id": "x" * 200})  # long ids never fail a probe
            assert (response.status_code, response.json()) == (200, body), path
        assert not any(future.done() for future in busy)
        assert all(future.result().status_code == 200 for future in busy)
    log = server.wait_for_log("POST /score 200")
    assert "POST /score 200" in log
    assert not any(f"GET {path}" in log for path in PROBES)


def test_ready_is_503_once_draining() -> None:
    app = create_app(SCRIPTS / "returns.py")
    with TestClient(app) as client:
        assert client.get("/ready").status_code == 200
        DrainingServer(uvicorn.Config(app), app).handle_exit(signal.SIGTERM, None)
        assert app.is_draining
        for path in ("/ready", "/v2/health/ready"):
            response = client.get(path)
            assert (response.status_code, response.json()) == (503, {"ready": False})
        assert client.get("/live").status_code == 200  # still alive while it drains
        assert client.post("/score", content="int").json() == 7  # in-flight work is still served


def _send_all(port: int, count: int, body: bytes) -> list[socket.socket]:
    sockets = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        head = f"POST /score HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: {len(body)}\r\n\r\n"
        sock.sendall(head.encode() + body)
        sockets.append(sock)
    return sockets


def _status(sock: socket.socket) -> int:
    data = b""
    with sock:
        try:
            while chunk := sock.recv(65536):
                data += chunk
        except OSError:
            pass
    return int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.1 ") else 0


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2], ids=["uvicorn", "gunicorn-2"])
def test_sigterm_lets_50_in_flight_requests_finish(serve: ServerFactory, workers: int) -> None:
    server = serve("sleepy.py", workers=workers, env={"SCORING_MAX_CONCURRENCY": "50"})
    sockets = _send_all(server.port, 50, b"0.3")
    time.sleep(0.15)  # accepted and inside run()
    os.kill(server.process.pid, signal.SIGTERM)  # as `docker stop` does: the main process only
    statuses = [_status(sock) for sock in sockets]
    assert statuses == [200] * 50
    assert server.wait_exit(30) == 0
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", server.port), timeout=2).close()


@pytest.mark.slow
def test_graceful_timeout_bounds_the_drain(serve: ServerFactory) -> None:
    server = serve("sleepy.py", env={"SCORING_GRACEFUL_TIMEOUT_S": "1"})
    (stuck,) = _send_all(server.port, 1, b"30")
    server.wait_for_log("sleeping 30s in run()")
    assert _sleeping(server, "30")  # the request is in flight, inside run()
    start = time.monotonic()
    os.kill(server.process.pid, signal.SIGTERM)
    server.wait_exit(20)
    elapsed = time.monotonic() - start
    # It waited for the request in flight, up to the graceful timeout (1 s), and not for the 30 s run() wanted.
    assert 1.0 <= elapsed < 10
    assert _status(stuck) != 200
    log = server.log()
    assert "Draining: /ready answers 503; in-flight requests get up to 1s" in log
    assert "Cancel 1 running task(s), timeout graceful shutdown exceeded" in log
