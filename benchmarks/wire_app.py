"""The wire: HTTP/1.1 over plain sockets in one Python thread, each scenario's work done inline, no framework at all.

Usage: python benchmarks/wire_app.py --scenario raw_1mb --port 8000 [--model_dir sample_models/diabetes/model]

The floor shows what Starlette on uvicorn costs; this server shows what is left when the server costs next to
nothing. It reads the request line and Content-Length only, reads each body straight into a buffer of its size and
writes each answer with one sendmsg, from a single epoll loop. Where a scenario's work is light and its p99 is still
high, what sets that cell's latency is not how much CPU a server spends per request but the client, the kernel and
the order in which a server answers. It is a probe for the benchmark, not a web server: no chunked bodies, no limits,
127.0.0.1 only.
"""

from __future__ import annotations

import selectors
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

from floor_app import make_work, scenario_args

READ_BYTES = 1 << 16
REASONS = {200: "OK", 404: "Not Found", 500: "Internal Server Error"}


class Connection:
    """One client: the bytes of an unfinished head, or the body being read, or an answer being written."""

    def __init__(self, sock: socket.socket, selector: selectors.BaseSelector, app: Callable[..., Any]) -> None:
        self.sock, self.selector, self.app = sock, selector, app
        self.pending = bytearray()  # received and not yet part of a request's body
        self.head: tuple[str, str] | None = None  # method and path of the request whose body is being read
        self.body = bytearray()
        self.filled = 0
        self.unsent: list[memoryview] = []

    def readable(self) -> None:
        if self.head is not None and self.filled < len(self.body):
            got = self.sock.recv_into(memoryview(self.body)[self.filled :])
            if not got:
                return self.close()
            self.filled += got
        else:
            data = self.sock.recv(READ_BYTES)
            if not data:
                return self.close()
            self.pending += data
        self.serve_ready()

    def serve_ready(self) -> None:
        """Answer every whole request received so far, until an answer cannot be written at once."""
        while not self.unsent:
            head = self.head or self.parse_head()
            if head is None or self.filled < len(self.body):
                return
            self.head = None
            self.send(*self.app(*head, self.body))

    def parse_head(self) -> tuple[str, str] | None:
        """The method and path of the next request once its head is in; its body is then read into `self.body`."""
        end = self.pending.find(b"\r\n\r\n")
        if end < 0:
            return None
        lines = bytes(self.pending[:end]).decode("latin-1").split("\r\n")
        method, path, _ = lines[0].split(" ", 2)
        length = 0
        for line in lines[1:]:
            name, _, text = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(text)
        start = end + 4
        self.body = bytearray(length)
        self.filled = min(length, len(self.pending) - start)
        self.body[: self.filled] = self.pending[start : start + self.filled]
        del self.pending[: start + self.filled]
        self.head = (method, path)
        return self.head

    def send(self, status: int, media_type: str, answer: bytes | bytearray) -> None:
        head = f"HTTP/1.1 {status} {REASONS[status]}\r\ncontent-type: {media_type}\r\n"
        parts = [memoryview(f"{head}content-length: {len(answer)}\r\n\r\n".encode()), memoryview(answer)]
        self.unsent = _after(parts, self.sock.sendmsg(parts))
        if self.unsent:
            self.selector.modify(self.sock, selectors.EVENT_WRITE, self)

    def writable(self) -> None:
        self.unsent = _after(self.unsent, self.sock.sendmsg(self.unsent))
        if not self.unsent:
            self.selector.modify(self.sock, selectors.EVENT_READ, self)
            self.serve_ready()

    def close(self) -> None:
        self.selector.unregister(self.sock)
        self.sock.close()


def _after(parts: list[memoryview], sent: int) -> list[memoryview]:
    """What is left of `parts` once their first `sent` bytes are written."""
    while parts and sent >= len(parts[0]):
        sent -= len(parts[0])
        parts = parts[1:]
    if parts and sent:
        parts = [parts[0][sent:], *parts[1:]]
    return parts


def make_app(scenario: str, model_dir: Path | None) -> Callable[[str, str, bytearray], tuple[int, str, Any]]:
    work, media_type = make_work(scenario, model_dir)

    def app(method: str, path: str, body: bytearray) -> tuple[int, str, Any]:
        if path == "/score" and method == "POST":
            try:
                # The work is typed for bytes; it takes the bytearray alike (orjson, decode), with no copy of the body.
                return 200, media_type, work(body)  # type: ignore[arg-type]
            except Exception as exc:
                return 500, "text/plain", repr(exc).encode()
        if path == "/":
            return 200, "text/plain", b"Healthy"
        return 404, "text/plain", b"Not Found"

    return app


def serve(port: int, app: Callable[..., Any]) -> None:
    listener = socket.create_server(("127.0.0.1", port), backlog=2048)
    listener.setblocking(False)
    selector = selectors.EpollSelector()
    selector.register(listener, selectors.EVENT_READ, None)
    while True:
        for key, events in selector.select():
            connection = key.data
            if connection is None:
                _accept(listener, selector, app)
                continue
            try:
                if events & selectors.EVENT_WRITE:
                    connection.writable()
                else:
                    connection.readable()
            except (ConnectionError, ValueError):
                connection.close()


def _accept(listener: socket.socket, selector: selectors.BaseSelector, app: Callable[..., Any]) -> None:
    while True:
        try:
            sock, _ = listener.accept()
        except BlockingIOError:
            return
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        selector.register(sock, selectors.EVENT_READ, Connection(sock, selector, app))


def main(argv: Any = None) -> None:
    args = scenario_args(argv, __doc__.splitlines()[0])
    serve(args.port, make_app(args.scenario, args.model_dir))


if __name__ == "__main__":
    main()
