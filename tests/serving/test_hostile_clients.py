"""Hostile clients against real servers: malformed HTTP, oversized request heads, slow (slowloris) clients.

Each attack is followed by normal requests on new connections, which must succeed, from a process still alive
(and, under gunicorn, from workers that were never replaced).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx2 as httpx
import pytest

from tests.conftest import ServerFactory
from tests.helpers import ROOT, Server, read_response

pytestmark = pytest.mark.slow

UNTESTED_RELEASES = ROOT / "tests" / "data" / "untested_releases"


@pytest.fixture(params=["our protocol", "uvicorn's protocol"])
def protocol(request: pytest.FixtureRequest) -> dict[str, str]:
    """The head bounds hold with our protocol, and with uvicorn's own behind the guard, which a uvicorn release the
    server was not tested with gets (compat.py): the environment that makes the server see such a release."""
    return {} if request.param == "our protocol" else {"PYTHONPATH": str(UNTESTED_RELEASES)}


def _served_by(server: Server, protocol: dict[str, str]) -> Server:
    """The server, once it is known to use the protocol the test meant."""
    fallback = "Serving with uvicorn's own HTTP protocol" in server.log()
    assert fallback == bool(protocol), server.log()
    return server


CLOSED = b"<closed>"
RESET = b"<reset>"


def _exchange(server: Server, data: bytes, half_close: bool = False, timeout: float = 10.0) -> bytes:
    """Send raw bytes on a new connection; return all the server answered before closing (CLOSED if nothing,
    RESET if the connection was reset, possibly after part of an answer)."""
    received = b""
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as sock:
        try:
            sock.sendall(data)
            if half_close:
                sock.shutdown(socket.SHUT_WR)
            while chunk := sock.recv(65536):
                received += chunk
        except (ConnectionResetError, BrokenPipeError):
            return received + RESET
    return received or CLOSED


def _status(answer: bytes) -> bytes:
    return answer.split(b"\r\n", 1)[0]


def _assert_still_serving(server: Server, workers: int) -> None:
    assert server.get("/").text == "Healthy"
    assert server.post("/score", content="int").json() == 7
    assert server.process.poll() is None
    if workers > 1:  # no worker crashed and was replaced
        assert server.log().count("Booting worker") == workers


MALFORMED = {
    "garbage request line": (b"\x00\x01\x02 garbage\r\n\r\n", b"HTTP/1.1 400 Bad Request"),
    "unknown method": (b"FROB / HTTP/1.1\r\nHost: x\r\n\r\n", b"HTTP/1.1 400 Bad Request"),
    "control byte in a header name": (b"GET / HTTP/1.1\r\nHost: x\r\nX-B\x01d: v\r\n\r\n", b"HTTP/1.1 400 Bad Request"),
    "NUL in a header value": (b"GET / HTTP/1.1\r\nHost: x\r\nX-Bad: a\x00b\r\n\r\n", b"HTTP/1.1 400 Bad Request"),
    "header line without a colon": (b"GET / HTTP/1.1\r\nHost: x\r\nnocolon\r\n\r\n", b"HTTP/1.1 400 Bad Request"),
    "bad chunk size": (
        b"POST /score HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nint\r\n0\r\n\r\n",
        b"HTTP/1.1 400 Bad Request",
    ),
    "Content-Length and chunked together": (
        b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3\r\nint\r\n0\r\n\r\n",
        b"HTTP/1.1 400 Bad Request",
    ),
    "negative Content-Length": (
        b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Length: -3\r\n\r\nint",
        b"HTTP/1.1 400 Bad Request",
    ),
    # The bytes after the declared 3 are read as a next request, which is garbage: 400, and the connection closes.
    "Content-Length shorter than the body": (
        b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nintXXXXX",
        b"HTTP/1.1 400 Bad Request",
    ),
    "a request line of 100 KB": (
        b"GET /" + b"a" * 100_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        b"HTTP/1.1 431 Request Header Fields Too Large",
    ),
    "not HTTP at all": (b"GET / SMTP/1.1\r\nHost: x\r\n\r\n", b"HTTP/1.1 400 Bad Request"),
}


def test_malformed_requests_get_a_4xx_and_the_server_keeps_serving(
    serve: ServerFactory, workers: int, protocol: dict[str, str]
) -> None:
    server = _served_by(
        serve("returns.py", workers=workers, env={"SCORING_HEADER_TIMEOUT_S": "2", **protocol}), protocol
    )
    for name, (request, status) in MALFORMED.items():
        answer = _exchange(server, request)
        assert _status(answer) == status and answer.count(b"HTTP/1.1 ") == 1, f"{name}: {answer[:300]!r}"
        _assert_still_serving(server, workers)
    # A body shorter than its Content-Length, then the client stops sending: nobody is left to answer.
    lying = _exchange(server, b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nint", half_close=True)
    assert lying == CLOSED
    assert "POST /score 499 " in server.wait_for_log("POST /score 499 ")
    # HTTP/0.9 (no version): the head never completes, so the head timeout ends it.
    start = time.monotonic()
    old = _exchange(server, b"GET /\r\n")
    assert _status(old) == b"HTTP/1.1 408 Request Timeout" and 1.5 < time.monotonic() - start < 6
    _assert_still_serving(server, workers)
    log = server.log()
    assert "Traceback" not in log and " E [" not in log


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


@contextmanager
def _peak_rss(pid: int) -> Iterator[list[int]]:
    """Sample the process's RSS every 10 ms while the block runs; the list holds the samples."""
    samples = [_rss_kib(pid)]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            samples.append(_rss_kib(pid))
            time.sleep(0.01)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        yield samples
    finally:
        done.set()
        sampler.join()


def test_oversized_heads_get_431(serve: ServerFactory, workers: int, protocol: dict[str, str]) -> None:
    server = _served_by(serve("returns.py", workers=workers, env=protocol), protocol)
    one_big = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (1 << 20) + b"\r\n\r\n"
    many = b"GET / HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(10_000)) + b"\r\n"
    refused = b"HTTP/1.1 431 Request Header Fields Too Large"
    # The 1 MB header is refused while the client is still sending it; the rest is read and dropped, so the client
    # gets the answer rather than a reset.
    assert _status(_exchange(server, one_big)) == refused
    _assert_still_serving(server, workers)
    answer = _exchange(server, many)
    assert _status(answer) == refused
    assert answer.endswith(b'{"message": "Request headers are larger than the limit of 65536 bytes"}')
    assert b"x-ms-run-function-failed: False" in answer
    _assert_still_serving(server, workers)
    # A head just under the limit, in many headers, is served: the limit is on size, not on count.
    headers = {f"x-h{i}": "v" * 40 for i in range(1000)}
    assert server.get("/", headers=headers).status_code == 200


def test_header_limit_is_a_setting(serve: ServerFactory, protocol: dict[str, str]) -> None:
    server = _served_by(serve("returns.py", "--max_header_bytes", "2048", env=protocol), protocol)
    assert server.post("/score", content="int", headers={"x-big": "a" * 1800}).json() == 7
    refused = _exchange(server, b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 3000 + b"\r\n\r\n")
    assert refused.endswith(b'{"message": "Request headers are larger than the limit of 2048 bytes"}')
    # Pipelined requests whose bodies are over the limit: body bytes never count as head bytes.
    request = b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Length: 3003\r\n\r\nint" + b" " * 3000
    answers = _exchange(server, request * 3 + b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    # (A status line, not "431" anywhere: the random request ids and run times in the answers may contain it.)
    assert answers.count(b"HTTP/1.1 200 OK") == 4 and b"HTTP/1.1 431" not in answers


def test_an_endless_header_does_not_grow_memory(serve: ServerFactory) -> None:
    server = serve("returns.py")
    block = b"a" * (1 << 20)
    sent = 0
    closed = False
    started = time.monotonic()
    with _peak_rss(server.process.pid) as samples, socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Endless: ")
        try:
            while time.monotonic() - started < 15:
                sock.sendall(block)
                sent += len(block)
        except (ConnectionResetError, BrokenPipeError):
            closed = True
    closed_after = time.monotonic() - started
    growth_kib = max(samples) - samples[0]
    print(f"endless header: {sent >> 20} MiB sent, closed after {closed_after:.1f} s; RSS grew by {growth_kib} KiB")
    # Refused at 64 KiB; what follows is read and dropped for LINGER_S (2 s), never buffered, then the socket closes.
    assert closed and closed_after < 8
    assert growth_kib < 8 * 1024
    _assert_still_serving(server, 1)


def _trickle(sockets: list[socket.socket], data: bytes, seconds: float) -> None:
    """Send `data` one byte a second on every socket, for `seconds`; stop when the server closes a socket."""
    for index in range(min(int(seconds), len(data))):
        try:
            for sock in sockets:
                sock.sendall(data[index : index + 1])
        except OSError:
            return
        time.sleep(1.0)


def _trickle_until_closed(sock: socket.socket, seconds: float) -> bytes:
    """Trickle a request head on `sock` (one byte a second, in the background); return all it answered until closed."""
    trickler = threading.Thread(target=_trickle, args=([sock], b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", seconds))
    trickler.daemon = True
    trickler.start()
    answer = b""
    while chunk := sock.recv(65536):
        answer += chunk
    return answer


def _prompt_requests(server: Server, until: threading.Thread) -> int:
    """Normal requests, one after another on new connections, while `until` runs; each must be answered promptly."""
    answered = 0
    while until.is_alive():
        start = time.monotonic()
        assert httpx.post(server.url + "/score", content="0", timeout=5.0).status_code == 200
        assert httpx.get(server.url + "/", timeout=5.0).status_code == 200
        assert time.monotonic() - start < 2.0
        answered += 1
        time.sleep(0.1)
    return answered


def test_slow_heads_do_not_hold_the_server(serve: ServerFactory, workers: int) -> None:
    server = serve("sleepy.py", workers=workers)
    head = b"GET / HTTP/1.1\r\nHost: slow\r\nUser-Agent: slowloris\r\n\r\n"
    slow = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(50)]
    try:
        trickler = threading.Thread(target=_trickle, args=(slow, head, 4))
        trickler.start()
        answered = _prompt_requests(server, trickler)
        trickler.join()
        assert answered >= 5
    finally:
        for sock in slow:
            sock.close()
    assert server.process.poll() is None


def test_a_slow_body_holds_no_run_slot(serve: ServerFactory, workers: int) -> None:
    # One run slot and no queue: a slow body that held a slot or a queue place would make every other /score a 503.
    server = serve("sleepy.py", workers=workers, env={"SCORING_MAX_CONCURRENCY": "1", "SCORING_MAX_QUEUE": "0"})
    body = b"0.0000000"
    slow = [socket.create_connection(("127.0.0.1", server.port), timeout=10) for _ in range(2 * workers)]
    try:
        for sock in slow:
            sock.sendall(b"POST /score HTTP/1.1\r\nHost: slow\r\nContent-Length: %d\r\n\r\n" % len(body))
        trickler = threading.Thread(target=_trickle, args=(slow, body, 4))
        trickler.start()
        answered = _prompt_requests(server, trickler)
        trickler.join()
        assert answered >= 5
        # The slow bodies, once complete, are scored like any other.
        for sock in slow:
            sock.sendall(body[4:])
            assert _status(sock.recv(65536)) == b"HTTP/1.1 200 OK"
    finally:
        for sock in slow:
            sock.close()


def test_heads_that_take_too_long_are_cut_off(serve: ServerFactory, protocol: dict[str, str]) -> None:
    server = _served_by(serve("returns.py", env={"SCORING_HEADER_TIMEOUT_S": "2", **protocol}), protocol)
    slow = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    idle = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    try:
        start = time.monotonic()
        answer = _trickle_until_closed(slow, 6)
        assert 1.5 < time.monotonic() - start < 5
        assert _status(answer) == b"HTTP/1.1 408 Request Timeout"
        assert answer.endswith(b'{"message": "Request headers did not arrive within 2 seconds"}')
        # A connection that never sends anything is closed without an answer.
        assert idle.recv(65536) == b""
        assert 1.5 < time.monotonic() - start < 5
    finally:
        slow.close()
        idle.close()
    # A keep-alive connection whose requests come quickly is not affected, however long it lives.
    with httpx.Client(base_url=server.url) as client:
        for _ in range(4):
            assert client.post("/score", content="int").json() == 7
            time.sleep(0.8)
    assert server.process.poll() is None


def test_a_body_that_arrives_after_the_queue_filled_is_refused(serve: ServerFactory) -> None:
    server = serve("sleepy.py", env={"SCORING_MAX_CONCURRENCY": "1", "SCORING_MAX_QUEUE": "0"})
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as slow, ThreadPoolExecutor(1) as pool:
        # Nothing runs yet, so this head is admitted; its body comes after a run has taken the only slot.
        slow.sendall(b"POST /score HTTP/1.1\r\nHost: slow\r\nContent-Length: 1\r\n\r\n")
        time.sleep(0.3)
        busy = pool.submit(server.post, "/score", content="1.5")
        time.sleep(0.5)
        slow.sendall(b"0")
        answer = slow.recv(65536)
        assert _status(answer) == b"HTTP/1.1 503 Service Unavailable" and b"retry-after: 1" in answer.lower()
        assert busy.result().status_code == 200


def test_a_slow_second_head_on_a_kept_alive_connection_gets_its_own_deadline(
    serve: ServerFactory, protocol: dict[str, str]
) -> None:
    server = _served_by(serve("returns.py", env={"SCORING_HEADER_TIMEOUT_S": "2", **protocol}), protocol)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert _status(read_response(sock)[0]) == b"HTTP/1.1 200 OK"
        time.sleep(1.5)
        second_started = time.monotonic()
        answer = _trickle_until_closed(sock, 5)
        # Two seconds from when the second head began, not from the connection's start (0.5 s) or never.
        assert 1.5 < time.monotonic() - second_started < 4
        assert _status(answer) == b"HTTP/1.1 408 Request Timeout"
