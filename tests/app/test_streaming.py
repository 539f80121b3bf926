"""Streamed AMLResponses against real servers: chunk by chunk, failures mid-stream, clients that leave."""

from __future__ import annotations

from pathlib import Path

import httpx2 as httpx
import pytest

from tests.conftest import ServerFactory


def _first_chunk_then_rest(url: str, gate: Path, **params: str) -> tuple[bytes, bytes, httpx.Response]:
    """Read the first chunk while the generator is held at the gate; then open the gate and read the rest."""
    with httpx.stream("POST", url, params={"gate": str(gate), **params}, timeout=30.0) as response:
        chunks = response.iter_raw()
        first = next(chunks)
        # The generator cannot finish before the gate exists: the first chunk came out while it was running.
        gate.touch()
        rest = b"".join(chunks)
    return first, rest, response


@pytest.mark.slow
def test_sync_generator_streams_chunk_by_chunk(serve: ServerFactory, workers: int, tmp_path: Path) -> None:
    server = serve("raw_stream.py", workers=workers)
    first, rest, response = _first_chunk_then_rest(server.url + "/score", tmp_path / "gate")
    assert first == b"first\n"
    assert rest == b"data: 0\n\ndata: 1\n\ndata: 2\n\n"
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream"
    assert response.headers["transfer-encoding"] == "chunked" and "content-length" not in response.headers
    assert response.headers["x-ms-run-function-failed"] == "False" and "x-ms-run-fn-exec-ms" in response.headers


@pytest.mark.slow
def test_the_head_goes_out_before_a_slow_first_chunk(serve: ServerFactory, tmp_path: Path) -> None:
    # The server holds a response head back to send it with the body's first piece, but not past the loop pass.
    server = serve("raw_stream.py")
    gate = tmp_path / "gate"
    with httpx.stream(
        "POST", server.url + "/score", params={"gate": str(gate), "fail": "late"}, timeout=10.0
    ) as response:
        assert response.status_code == 200 and not gate.exists()
        gate.touch()
        assert response.read() == b"first\ndata: 0\n\ndata: 1\n\ndata: 2\n\n"


@pytest.mark.slow
def test_async_generator_streams(serve: ServerFactory, workers: int, tmp_path: Path) -> None:
    server = serve("raw_stream.py", workers=workers)
    first, rest, _ = _first_chunk_then_rest(server.url + "/score", tmp_path / "gate", kind="async")
    assert (first, rest) == (b"first\n", b"second\n")
    listed = server.post("/score?kind=list")
    assert (listed.status_code, listed.content) == (201, b"abc")


@pytest.mark.slow
@pytest.mark.parametrize(("fail", "logged"), [("raise", "RuntimeError: model crashed mid-stream"), ("type", "int")])
def test_a_failing_stream_is_cut_short_logged_and_the_server_keeps_serving(
    serve: ServerFactory, workers: int, fail: str, logged: str
) -> None:
    server = serve("raw_stream.py", workers=workers)
    received = b""
    with pytest.raises(httpx.RemoteProtocolError):  # the body ends without its last chunk: visibly incomplete
        with httpx.stream("POST", server.url + "/score", params={"fail": fail}, timeout=30.0) as response:
            assert response.status_code == 200
            for chunk in response.iter_raw():
                received += chunk
    assert received == b"first\n"
    assert server.get("/").text == "Healthy"
    assert server.post("/score?kind=list").content == b"abc"
    log = server.wait_for_log(" aborted")  # the last line such a request writes
    assert logged in log
    assert "Exception in ASGI application" not in log and "StreamAborted" not in log
    assert "POST /score?fail=" + fail + " 200" in log and "aborted" in log


@pytest.mark.slow
def test_a_client_that_leaves_closes_the_generator(serve: ServerFactory, tmp_path: Path) -> None:
    server = serve("raw_stream.py")
    with httpx.stream("POST", server.url + "/score", params={"gate": str(tmp_path / "never")}, timeout=30.0) as r:
        assert next(r.iter_raw()) == b"first\n"
    # The generator is blocked at the gate for up to 20 s; once it yields again the send fails and it is closed.
    (tmp_path / "never").touch()
    assert "generator closed" in server.wait_for_log("generator closed")
    assert server.get("/").status_code == 200
