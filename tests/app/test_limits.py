"""Request limits against real servers: body size (declared and chunked) and the bounded wait queue."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.conftest import ServerFactory
from tests.helpers import Server


def _raw_exchange(server: Server, head: bytes, timeout: float = 10.0) -> bytes:
    """Send a request head (and no body) on a raw socket; return whatever the server answers."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as sock:
        sock.sendall(head)
        received = b""
        while b"\r\n\r\n" not in received or not received.rstrip().endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
    return received


@pytest.mark.slow
def test_declared_oversized_body_is_refused_before_it_is_read(serve: ServerFactory, workers: int) -> None:
    server = serve("returns.py", workers=workers)
    start = time.monotonic()
    answer = _raw_exchange(
        server, b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Length: 2147483648\r\nContent-Type: text/plain\r\n\r\n"
    )
    # Answered without waiting for the 2 GB that were never sent.
    assert time.monotonic() - start < 5.0
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert answer.endswith(b'{"message": "Request body is larger than the limit of 104857600 bytes"}')
    assert server.post("/score", content="int").json() == 7


@pytest.mark.slow
def test_chunked_body_is_cut_off_at_the_limit(serve: ServerFactory) -> None:
    server = serve("returns.py", env={"SCORING_MAX_REQUEST_BYTES": "1000"})

    def chunks(total: int) -> Iterator[bytes]:
        sent = 0
        while sent < total:
            yield b"x" * 300
            sent += 300

    too_big = server.post("/score", content=chunks(5000))
    assert (too_big.status_code, too_big.json()) == (
        413,
        {"message": "Request body is larger than the limit of 1000 bytes"},
    )
    assert too_big.headers["x-ms-run-function-failed"] == "False"
    at_limit = server.post("/score", content=b"x" * 1000)
    assert at_limit.status_code == 500  # reached run(), which has no value kind "xxx..."
    assert server.post("/score", content="int").json() == 7


@pytest.mark.slow
@pytest.mark.parametrize("script", ["sleepy.py", "async_run.py"])
def test_full_queue_answers_503_at_once(serve: ServerFactory, script: str) -> None:
    server = serve(script, env={"SCORING_MAX_QUEUE": "1"})
    with ThreadPoolExecutor(4) as pool:
        running = pool.submit(server.post, "/score", content="1.5")
        time.sleep(0.3)
        waiting = pool.submit(server.post, "/score", content="0")
        time.sleep(0.3)
        start = time.monotonic()
        refused = server.post("/score", content="0")
        refused_after = time.monotonic() - start
        assert running.result().status_code == 200 and waiting.result().status_code == 200
    assert (refused.status_code, refused.headers["retry-after"]) == (503, "1")
    assert refused.json() == {
        "message": "The server is busy: 1 requests are already waiting to be scored. Retry later."
    }
    assert refused_after < 1.0  # not queued behind the 1.5 s call
    assert server.post("/score", content="0").status_code == 200
