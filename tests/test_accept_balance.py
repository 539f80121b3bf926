"""Under gunicorn, keep-alive connections are spread evenly over the workers, and a stopped worker stops no one."""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from collections import Counter

from scoring_runtime.accept_balance import ACCEPT_WAIT_S
from tests.conftest import ServerFactory

REQUEST = b"POST /score HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n\r\n0"


def ask(sock: socket.socket) -> int:
    """One request on a kept-alive connection; the pid of the worker that answered."""
    sock.sendall(REQUEST)
    data = b""
    while b"\r\n\r\n" not in data or not data.endswith(b"}"):
        chunk = sock.recv(65536)
        assert chunk, data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    return int(json.loads(body)["pid"])


def test_connections_are_balanced_and_a_stopped_worker_is_not_waited_for(serve: ServerFactory) -> None:
    server = serve("sleepy.py", workers=2)
    # Both workers accepting: one still starting is not waited for (it takes no connections until it is ready).
    deadline = time.monotonic() + 30
    while server.log().count("Application startup complete") < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)
    connections: list[socket.socket] = []
    stopped = None
    try:
        owners = Counter()
        for _ in range(8):
            connections.append(socket.create_connection(("127.0.0.1", server.port), timeout=10))
            owners[ask(connections[-1])] += 1
            # Longer than a worker leaves a connection to the other: a wait that ended must not count for the next.
            time.sleep(ACCEPT_WAIT_S * 2)
        # Each new connection goes to a worker holding no more than the other: four each, however the races fall.
        assert sorted(owners.values()) == [4, 4]
        stopped, running = list(owners)
        os.kill(stopped, signal.SIGSTOP)
        # Level with the stopped worker (four each), the running one takes the next connection at once...
        connections.append(socket.create_connection(("127.0.0.1", server.port), timeout=10))
        assert ask(connections[-1]) == running
        # ...but holding more, it first leaves the one after to the stopped worker, and takes it after the wait.
        start = time.monotonic()
        connections.append(socket.create_connection(("127.0.0.1", server.port), timeout=10))
        assert ask(connections[-1]) == running
        assert time.monotonic() - start >= ACCEPT_WAIT_S * 0.9
    finally:
        if stopped is not None:
            os.kill(stopped, signal.SIGCONT)
        for sock in connections:
            sock.close()
