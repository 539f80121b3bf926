"""Request bodies of declared length handed to the app whole (protocol.py), on both event loops the server runs on."""

from __future__ import annotations

import asyncio
import random
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from scoring_runtime.config import load_settings
from scoring_runtime.serving.http import protocol_class
from tests.serving.inprocess import LOOPS, serve_protocol

BODY = random.Random(5).randbytes(1024 * 1024 + 3)
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


async def _echo(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    """Echoes the body, with how many messages it came in; /ignore answers without reading it."""
    body, messages, more = b"", 0, scope["path"] != "/ignore"
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        body, messages, more = body + message["body"], messages + 1, message["more_body"]
    headers = [(b"content-length", str(len(body)).encode()), (b"x-messages", str(messages).encode())]
    await send(
        {"type": "http.response.start", "status": 404 if scope["path"] == "/ignore" else 200, "headers": headers}
    )
    await send({"type": "http.response.body", "body": body})


def _request(path: str, body: bytes) -> bytes:
    return b"POST %s HTTP/1.1\r\nhost: t\r\ncontent-length: %d\r\n\r\n%s" % (path.encode(), len(body), body)


async def _response(reader: asyncio.StreamReader) -> tuple[int, int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split()[1])
    length = int(re.search(rb"content-length: (\d+)", head).group(1))  # type: ignore[union-attr]
    messages = int(re.search(rb"x-messages: (\d+)", head).group(1))  # type: ignore[union-attr]
    return status, messages, await reader.readexactly(length)


def _serve_and_talk(
    loop_name: str, tmp_path: Path, talk: Callable[[int], Awaitable[Any]], keep_alive_s: int = 5
) -> Any:
    settings = load_settings({"entry_script": str(tmp_path / "score.py")}, environ={})[0]
    return serve_protocol(loop_name, protocol_class(settings), _echo, talk, timeout_keep_alive=keep_alive_s)


@pytest.mark.parametrize("loop_name", LOOPS)
def test_a_big_body_ends_exactly_where_the_next_request_begins(loop_name: str, tmp_path: Path) -> None:
    # Three pipelined requests in one write: the big bodies are read past the parser, the small one through it.
    async def talk(port: int) -> list[tuple[int, int, bytes]]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        small, medium = b"x" * 100, BODY[:200_000]
        writer.write(_request("/a", BODY) + _request("/b", small) + _request("/c", medium))
        answers = [await _response(reader) for _ in range(3)]
        writer.close()
        await writer.wait_closed()
        return answers

    answers = _serve_and_talk(loop_name, tmp_path, talk)
    assert answers == [(200, 1, BODY), (200, 1, b"x" * 100), (200, 1, BODY[:200_000])]


@pytest.mark.parametrize("loop_name", LOOPS)
def test_a_big_body_trickling_in_arrives_whole(loop_name: str, tmp_path: Path) -> None:
    async def talk(port: int) -> tuple[int, int, bytes]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        request = _request("/a", BODY)
        for start in range(0, len(request), 150_001):
            writer.write(request[start : start + 150_001])
            await writer.drain()
            await asyncio.sleep(0.01)
        answer = await _response(reader)
        writer.close()
        await writer.wait_closed()
        return answer

    assert _serve_and_talk(loop_name, tmp_path, talk) == (200, 1, BODY)


@pytest.mark.slow
@pytest.mark.parametrize("loop_name", LOOPS)
def test_a_body_the_app_did_not_read_is_dropped_and_the_connection_goes_on(loop_name: str, tmp_path: Path) -> None:
    # The answer leaves before the body arrives. The body, trickling in for longer than the keep-alive timeout
    # (1 s), is read and dropped without the connection being cut; the next request on it is answered. After a
    # dropped body that nothing follows, the connection is closed once it has idled for that timeout.
    head = _request("/ignore", BODY)[: -len(BODY)]

    async def talk(port: int) -> list[object]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(_request("/ignore", b"") + head)
        answers: list[object] = [await _response(reader), await _response(reader)]
        for start in range(0, len(BODY), len(BODY) // 6 + 1):
            writer.write(BODY[start : start + len(BODY) // 6 + 1])
            await asyncio.sleep(0.3)
        writer.write(_request("/a", b"after") + head)
        answers += [await _response(reader), await _response(reader)]
        writer.write(BODY)
        answers.append(await reader.read())  # the end of the stream: closed by the server
        writer.close()
        await writer.wait_closed()
        return answers

    assert _serve_and_talk(loop_name, tmp_path, talk, keep_alive_s=1) == [
        (404, 0, b""),
        (404, 0, b""),
        (200, 1, b"after"),
        (404, 0, b""),
        b"",
    ]


@pytest.mark.parametrize("loop_name", LOOPS)
def test_a_client_leaving_halfway_through_a_big_body_leaves_the_server_serving(loop_name: str, tmp_path: Path) -> None:
    async def talk(port: int) -> tuple[int, int, bytes]:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(_request("/a", BODY)[: len(BODY) // 2])
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.close()
        await writer.wait_closed()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(_request("/a", BODY))
        answer = await _response(reader)
        writer.close()
        await writer.wait_closed()
        return answer

    assert _serve_and_talk(loop_name, tmp_path, talk) == (200, 1, BODY)


@pytest.mark.parametrize("loop_name", LOOPS)
def test_big_bodies_arriving_at_once_on_two_connections_stay_apart(loop_name: str, tmp_path: Path) -> None:
    # The first piece of one connection's body is kept while another connection's request is read and answered.
    other = bytes(200_000)

    async def talk(port: int) -> list[tuple[int, int, bytes]]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        reader2, writer2 = await asyncio.open_connection("127.0.0.1", port)
        request = _request("/a", BODY)
        writer.write(request[: len(request) - len(BODY) + 100_000])
        await writer.drain()
        await asyncio.sleep(0.05)
        writer2.write(_request("/b", other))
        answers = [await _response(reader2)]
        writer.write(request[len(request) - len(BODY) + 100_000 :])
        answers.append(await _response(reader))
        for w in (writer, writer2):
            w.close()
            await w.wait_closed()
        return answers

    assert _serve_and_talk(loop_name, tmp_path, talk) == [(200, 1, other), (200, 1, BODY)]


@pytest.mark.parametrize("loop_name", LOOPS)
def test_what_follows_an_upgrade_head_in_the_same_read_is_dropped_as_before(loop_name: str, tmp_path: Path) -> None:
    # httptools stops at the head of an upgrade request (no websockets here: uvicorn answers it as plain HTTP) and
    # the rest of that read is not parsed; the connection then serves the next request.
    head = b"GET /up HTTP/1.1\r\nhost: t\r\nupgrade: something\r\nconnection: upgrade\r\n\r\n"

    async def talk(port: int) -> list[tuple[int, int, bytes]]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(head + b"not http " * 4096)
        answers = [await _response(reader)]
        writer.write(_request("/a", b"after"))
        answers.append(await _response(reader))
        writer.close()
        await writer.wait_closed()
        return answers

    assert _serve_and_talk(loop_name, tmp_path, talk) == [(200, 1, b""), (200, 1, b"after")]
