"""The benchmark's bare-socket server (benchmarks/wire_app.py), run as the benchmark runs it: answers it gives wrk."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import ROOT, free_port


@pytest.fixture
def wire(tmp_path: Path) -> Iterator[int]:
    port = free_port()
    log = (tmp_path / "wire.log").open("wb")
    command = [sys.executable, "wire_app.py", "--scenario", "raw_1mb", "--port", str(port)]
    process = subprocess.Popen(
        command, cwd=ROOT / "benchmarks", stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError((tmp_path / "wire.log").read_text()) from None
                time.sleep(0.05)
        yield port
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(10)
        log.close()


def test_it_echoes_bodies_larger_than_one_write_on_a_kept_alive_connection(wire: int) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", wire, timeout=30)
    try:
        _echoes(connection)
    finally:
        connection.close()


def _echoes(connection: http.client.HTTPConnection) -> None:
    for size in (0, 1 << 20, 8 << 20):  # 8 MB does not fit the socket's buffers: the answer is written in parts
        body = os.urandom(size)
        connection.request("POST", "/score", body, {"Content-Type": "application/octet-stream"})
        response = connection.getresponse()
        assert (response.status, response.getheader("content-type")) == (200, "application/octet-stream")
        assert response.read() == body
    connection.request("GET", "/")
    assert connection.getresponse().read() == b"Healthy"
    connection.request("GET", "/nowhere")
    assert connection.getresponse().status == 404


def test_requests_sent_together_are_answered_in_order(wire: int) -> None:
    first, second = b"a" * 100_000, b"b" * 10
    head = b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
    requests = b"".join(head % len(body) + body for body in (first, second))
    with socket.create_connection(("127.0.0.1", wire), timeout=30) as sock:
        sock.sendall(requests)
        received = b""
        while received.count(b"HTTP/1.1 200") < 2 or not received.endswith(second):
            chunk = sock.recv(1 << 16)
            assert chunk, received[-200:]
            received += chunk
    assert received.index(first) < received.index(second)
    assert received.endswith(b"content-length: 10\r\n\r\n" + second)
