"""The HTTP protocol: a response head leaves with its body, and a body arrives whole however it is cut."""

from __future__ import annotations

import asyncio
import random
import socket
import time

import httpx2 as httpx
import pytest

from scoring_runtime.serving.http.head_with_body import HeadWithBody
from tests.conftest import ServerFactory
from tests.helpers import read_response


class _Transport:
    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[bytes, ...]]] = []

    def write(self, data: bytes) -> None:
        self.calls.append(("write", (data,)))

    def writelines(self, lines: tuple[bytes, ...]) -> None:
        self.calls.append(("writelines", tuple(lines)))

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        self.calls.append(("close", ()))


def test_a_response_head_leaves_with_its_body_in_one_write() -> None:
    async def scenario() -> list[list[tuple[str, tuple[bytes, ...]]]]:
        loop = asyncio.get_running_loop()
        seen = []
        cases = ([b"head", b"body", b"more"], False), ([b"head"], False), ([b"head"], True), ([b"head", b""], False)
        for writes, close in cases:
            transport = _Transport()
            cycle_view = HeadWithBody(transport, loop)  # type: ignore[arg-type]
            for data in writes:
                cycle_view.write(data)
            if close:
                cycle_view.close()
            await asyncio.sleep(0)  # a head with nothing after it goes out at the end of the pass
            seen.append(transport.calls)
        return seen

    assert asyncio.run(scenario()) == [
        [("writelines", (b"head", b"body")), ("write", (b"more",))],
        [("write", (b"head",))],
        [("write", (b"head",)), ("close", ())],
        [("write", (b"head",))],  # an empty body is not handed to writelines
    ]


@pytest.mark.slow
def test_bodies_arrive_whole_however_they_are_cut(serve: ServerFactory) -> None:
    # A body of declared length is handed to run() whole: in one read, in pieces sent apart, or behind a
    # `100 Continue`; a chunked body keeps uvicorn's flow-controlled path. Every byte must come back in order.
    server = serve("raw_binary.py")
    body = random.Random(7).randbytes(3 * 1024 * 1024 + 17)
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        head = b"POST /score HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-test\r\nContent-Length: %d\r\n"
        sock.sendall(head % len(body) + b"\r\n" + body)
        assert read_response(sock)[1] == body
        sock.sendall(head % len(body) + b"\r\n")
        for start in range(0, len(body), 700_001):
            time.sleep(0.05)
            sock.sendall(body[start : start + 700_001])
        assert read_response(sock)[1] == body
        sock.sendall(head % len(body) + b"Expect: 100-continue\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 100 Continue")
        sock.sendall(body)
        assert read_response(sock)[1] == body
    chunked = httpx.post(server.url + "/score", content=iter([body[:1000], body[1000:]]), timeout=30)
    assert chunked.status_code == 200 and chunked.content == body
