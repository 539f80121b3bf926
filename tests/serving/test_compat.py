"""The start-up check of uvicorn's internals (compat.py), and the fallback it picks: uvicorn's own protocol behind
the request-head guard (guard.py), with uvicorn's own accept loop. The head bounds under the fallback are tested
against real servers in test_hostile_clients.py; here: the check itself, the choice, and the guard in process."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle
from uvicorn_worker import UvicornWorker

from scoring_runtime.serving import workers
from scoring_runtime.serving.http import compat, guard, protocol_class, stock_protocol
from scoring_runtime.serving.http.protocol import BoundedHttpToolsProtocol
from scoring_runtime.settings import Settings
from tests.conftest import ServerFactory
from tests.helpers import ROOT
from tests.serving.inprocess import LOOPS, Talk, serve_protocol

UNTESTED_RELEASES = ROOT / "tests" / "data" / "untested_releases"


@pytest.fixture(autouse=True)
def fresh_check(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test checks afresh, and leaves the cached answer for the installed uvicorn behind it."""
    check = compat.uvicorn_problems
    check.cache_clear()
    monkeypatch.setattr(compat, "_warned", False)
    yield
    check.cache_clear()


def test_the_installed_uvicorn_is_one_the_server_was_tested_with() -> None:
    assert compat.uvicorn_problems() == ()
    assert compat.internals_fit()


def test_an_untested_release_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(uvicorn, "__version__", "0.99.0")
    assert compat.uvicorn_problems() == ("uvicorn 0.99.0 is not a release this server was tested with (0.54, 0.55)",)


def test_a_missing_method_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(HttpToolsProtocol, "_unset_keepalive_if_required")
    (problem,) = compat.uvicorn_problems()
    assert "lacks HttpToolsProtocol._unset_keepalive_if_required" in problem


def test_a_server_that_no_longer_sets_its_servers_is_found(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compat, "STARTUP_NAMES", ("servers", "acceptors"))
    (problem,) = compat.uvicorn_problems()
    assert problem.endswith("lacks Server.acceptors")


def test_a_connection_attribute_that_is_gone_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compat, "CYCLE_ATTRIBUTES", (*compat.CYCLE_ATTRIBUTES, "chunks"))
    (problem,) = compat.uvicorn_problems()
    assert problem.endswith("connections lack cycle.chunks")


def test_a_request_body_kept_otherwise_is_found(monkeypatch: pytest.MonkeyPatch) -> None:
    original = RequestResponseCycle.__init__

    def body_as_list(self: RequestResponseCycle, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        self.body = []  # type: ignore[assignment]

    monkeypatch.setattr(RequestResponseCycle, "__init__", body_as_list)
    assert compat.uvicorn_problems() == (f"uvicorn {uvicorn.__version__} keeps a request body as list",)


def test_a_probe_that_fails_is_a_problem(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(self: HttpToolsProtocol, data: bytes) -> None:
        raise TypeError("changed")

    monkeypatch.setattr(HttpToolsProtocol, "data_received", broken)
    (problem,) = compat.uvicorn_problems()
    assert problem.endswith("protocol failed: TypeError: changed")


def test_the_check_runs_inside_an_event_loop_too() -> None:
    async def check() -> tuple[str, ...]:
        return compat.uvicorn_problems()

    assert asyncio.run(check()) == ()


def test_an_unfit_uvicorn_gets_its_own_protocol_behind_the_guard(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(max_header_bytes=2048, header_timeout_s=7)
    assert issubclass(protocol_class(settings), BoundedHttpToolsProtocol)
    monkeypatch.setattr(compat, "uvicorn_problems", lambda: ("uvicorn 9.9 is not one",))
    caplog.set_level(logging.WARNING)
    chosen = protocol_class(settings)
    assert issubclass(chosen, guard.HeadGuard) and not issubclass(chosen, BoundedHttpToolsProtocol)
    assert chosen.inner_class is stock_protocol()
    assert (chosen.max_head_bytes, chosen.head_timeout_s) == (2048, 7.0)
    protocol_class(settings)
    (warning,) = caplog.messages  # once per process
    assert warning.startswith("uvicorn 9.9 is not one. Serving with uvicorn's own HTTP protocol and accept loop")
    assert "the request-head bounds (431, 408) still hold" in warning


async def _echo(scope: dict[str, Any], receive: Any, send: Any) -> None:
    body, more = b"", True
    while more:
        message = await receive()
        body, more = body + message.get("body", b""), message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"%d" % len(body))]})
    await send({"type": "http.response.body", "body": body})


def _guarded_server(loop_name: str, talk: Talk) -> Any:
    protocol = guard.guarded(stock_protocol(), max_head_bytes=1024, head_timeout_s=1.0)
    return serve_protocol(loop_name, protocol, _echo, talk)


async def _exchange(port: int, *pieces: bytes, pause: float = 0.0) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for piece in pieces:
        writer.write(piece)
        await writer.drain()
        await asyncio.sleep(pause)
    answer = await reader.read()
    writer.close()
    return answer


@pytest.mark.parametrize("loop_name", LOOPS)
def test_the_guard_passes_requests_on_and_refuses_oversized_heads(loop_name: str) -> None:
    request = b"POST /a HTTP/1.1\r\nhost: t\r\ncontent-length: 5\r\n\r\nhello"
    closing = b"POST /b HTTP/1.1\r\nhost: t\r\nconnection: close\r\ncontent-length: 2\r\n\r\nhi"
    big = b"GET / HTTP/1.1\r\nhost: t\r\nx-big: " + b"a" * 2000 + b"\r\n\r\n"

    async def talk(port: int) -> list[bytes]:
        return [
            await _exchange(port, request + closing),  # pipelined, bodies included: both answered
            await _exchange(port, big),  # one read
            await _exchange(port, big[:600], big[600:1200], big[1200:], pause=0.05),  # over several reads
            await _exchange(port, b"\x00\x01 garbage\r\n\r\n"),  # uvicorn's own answer
        ]

    answers = _guarded_server(loop_name, talk)
    assert re.findall(rb"HTTP/1.1 \d+", answers[0]) == [b"HTTP/1.1 200", b"HTTP/1.1 200"]
    assert b"\r\n\r\nhello" in answers[0] and answers[0].endswith(b"\r\n\r\nhi")
    for refused in answers[1:3]:
        assert refused.startswith(b"HTTP/1.1 431 Request Header Fields Too Large")
        assert refused.endswith(b'{"message": "Request headers are larger than the limit of 1024 bytes"}')
    assert answers[3].startswith(b"HTTP/1.1 400 Bad Request")


@pytest.mark.slow
@pytest.mark.parametrize("loop_name", LOOPS)
def test_the_guard_times_out_slow_heads_and_lets_upgrades_through(loop_name: str) -> None:
    async def talk(port: int) -> list[bytes]:
        slow = await _exchange(port, b"GET / HTTP/1.1\r\n", b"host: t\r\n", pause=0.7)
        upgrade = b"GET /up HTTP/1.1\r\nhost: t\r\nupgrade: something\r\nconnection: upgrade, close\r\n\r\n"
        return [slow, await _exchange(port, upgrade)]

    slow, upgraded = _guarded_server(loop_name, talk)
    assert slow.startswith(b"HTTP/1.1 408 Request Timeout")
    assert upgraded.startswith(b"HTTP/1.1 200 OK")


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2], ids=["uvicorn", "gunicorn-2"])
def test_a_server_on_an_untested_releases_serves_and_says_what_it_lost(serve: ServerFactory, workers: int) -> None:
    server = serve("raw_binary.py", workers=workers, env={"PYTHONPATH": str(UNTESTED_RELEASES)})
    body = bytes(range(256)) * 4096
    answer = server.post("/score", content=body, headers={"content-type": "application/x-test"})
    assert (answer.status_code, answer.content) == (200, body)
    assert server.get("/score?x=1").content == b"/score?x=1"
    log = server.log()
    (warning,) = [line for line in log.splitlines() if "Serving with uvicorn's own HTTP protocol" in line]
    assert "uvicorn 0.99.0 is not a release this server was tested with (0.54, 0.55)" in warning
    assert "connections accepted in bursts and balanced across workers" in warning


def test_the_installed_uvicorn_worker_is_one_the_server_was_tested_with(monkeypatch: pytest.MonkeyPatch) -> None:
    workers.own_serve_problem.cache_clear()
    assert workers.own_serve_problem() is None
    workers.own_serve_problem.cache_clear()
    monkeypatch.delattr(UvicornWorker, "_install_sigquit_handler")
    assert workers.own_serve_problem() == "uvicorn-worker 0.4.0 lacks _install_sigquit_handler"
    workers.own_serve_problem.cache_clear()


@pytest.mark.slow
def test_workers_on_an_untested_uvicorn_worker_serve_with_its_own_server(serve: ServerFactory) -> None:
    env = {"PYTHONPATH": str(UNTESTED_RELEASES), "UNTESTED_RELEASES": "uvicorn_worker"}
    server = serve("raw_binary.py", "--max_header_bytes", "2048", workers=2, env=env)
    body = bytes(range(256)) * 4096
    answer = server.post("/score", content=body, headers={"content-type": "application/x-test"})
    assert (answer.status_code, answer.content) == (200, body)
    assert server.get("/score", headers={"x-big": "a" * 3000}).status_code == 431  # the head bounds still hold
    (warning,) = [line for line in server.log().splitlines() if "Its workers serve with uvicorn's own server" in line]
    assert "uvicorn-worker 0.99.0 is not a release this server was tested with (0.4)" in warning
    assert "Serving with uvicorn's own HTTP protocol" not in server.log()  # uvicorn itself is a tested release
