"""AMLResponse after construction is Flask's Response: every change a script makes is what is sent."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from scoring_runtime.azureml.aml_response import AMLResponse
from scoring_runtime.azureml.response_headers import ResponseHeaders
from tests.conftest import ServerFactory

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00"


def _sent(response: AMLResponse) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """The status, headers and body the ASGI server is given."""
    messages: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    async def send(message: Any) -> None:
        messages.append(message)

    asyncio.run(response({"type": "http", "method": "POST"}, receive, send))
    start, *bodies = messages
    return start["status"], list(start["headers"]), b"".join(message.get("body", b"") for message in bodies)


def _values(headers: list[tuple[bytes, bytes]], name: bytes) -> list[bytes]:
    return [value for key, value in headers if key == name]


def test_mimetype_and_content_type_set_after_construction_are_sent() -> None:
    resp = AMLResponse(JPEG, 200)  # Microsoft's binary-data sample
    resp.mimetype = "image/jpg"
    assert (resp.mimetype, resp.content_type) == ("image/jpg", "image/jpg")
    status, headers, body = _sent(resp)
    assert (status, body, _values(headers, b"content-type")) == (200, JPEG, [b"image/jpg"])

    text = AMLResponse("x", 200)
    text.mimetype = "text/csv"  # Werkzeug adds the charset to text types set this way...
    assert text.content_type == "text/csv; charset=utf-8" and text.mimetype == "text/csv"
    text.mimetype = "application/atom+xml"
    assert text.content_type == "application/atom+xml; charset=utf-8"
    text.charset = "latin-1"
    text.mimetype = "text/plain"
    assert text.content_type == "text/plain; charset=latin-1"
    text.content_type = "text/csv"  # ...but not to content_type, which is sent as given
    assert _values(_sent(text)[1], b"content-type") == [b"text/csv"]
    text.content_type = None
    assert text.mimetype is None and _values(text.raw_headers, b"content-type") == []


def test_status_and_status_code() -> None:
    resp = AMLResponse("x", 200)
    assert resp.status == "200 OK"
    resp.status = "201 CREATED"
    assert (resp.status_code, _sent(resp)[0]) == (201, 201)
    resp.status = 404
    assert (resp.status, resp.status_code) == ("404 NOT FOUND", 404)
    resp.status = "418"
    assert resp.status == "418 I'M A TEAPOT"
    resp.status = " 299 Fine "
    assert (resp.status, resp.status_code) == ("299 Fine", 299)
    resp.status_code = 202
    assert (resp.status, _sent(resp)[0]) == ("202 ACCEPTED", 202)
    resp.status = 799
    assert resp.status == "799 UNKNOWN"
    with pytest.raises(ValueError, match="Empty status"):
        resp.status = " "
    assert repr(AMLResponse("abc", 200)) == "<AMLResponse 3 bytes [200 OK]>"


def test_headers_follow_werkzeug_and_are_sent() -> None:
    resp = AMLResponse("x", 200, {"X-Built": "1, 2"})
    headers = resp.headers
    assert isinstance(headers, ResponseHeaders) and resp.headers is headers
    headers["X-Count"] = 5  # any value, as its str
    headers.add("x-multi", "a")
    headers.add("X-Multi", "b")
    headers.add("Content-Disposition", "attachment", filename="a b.png")
    headers.set("X-Flag", True)
    headers.extend({"X-List": ["1", "2"]}, X_Kw="k")
    headers.extend([("X-List", "3")])
    del headers["x-built"]
    assert headers["x-count"] == headers.get("X-COUNT") == "5" and headers.get("x-count", type=int) == 5
    assert headers.get("x-missing", "d") == "d" and headers.get("x-multi", type=int) is None
    assert headers.getlist("X-MULTI") == ["a", "b"] and headers.getlist("x-list", type=int) == [1, 2, 3]
    assert "x-flag" in headers and "X-Built" not in headers
    first: object = next(iter(headers))  # iterated as (Name, value) pairs, as Werkzeug's headers are
    assert first == ("Content-Length", "1")
    assert headers.getlist("content-disposition") == ['attachment; filename="a b.png"']
    headers.update({"X-List": "9", "X-Multi": ["c", "d"]})
    assert headers.getlist("x-list") == ["9"] and headers.getlist("x-multi") == ["c", "d"]
    assert headers.pop("X-Flag") == "True" and headers.pop("X-Flag", None) is None
    assert headers.setdefault("X-Default", 1) == "1" and headers.setdefault("X-Default", 2) == "1"
    with pytest.raises(ValueError, match="newline"):
        headers["X-Bad"] = "a\r\nInjected: 1"
    sent = _sent(resp)[1]
    assert _values(sent, b"x-count") == [b"5"] and _values(sent, b"x-multi") == [b"c", b"d"]
    assert _values(sent, b"x-built") == [] and _values(sent, b"x_kw") == [b"k"] and _values(sent, b"x-flag") == []
    # The server edits raw_headers in place after run(): the same list the headers object shows.
    resp.raw_headers.append((b"x-ms-run-fn-exec-ms", b"1.0"))
    assert resp.headers["X-Ms-Run-Fn-Exec-Ms"] == "1.0"


def test_headers_can_be_replaced() -> None:
    resp = AMLResponse("abc", 200)
    resp.headers = {"X-Only": "1", "Content-Type": "text/plain"}
    assert resp.headers.items() == [("X-Only", "1"), ("Content-Type", "text/plain"), ("Content-Length", "3")]
    detached = resp.headers.copy()
    detached["X-Other"] = "2"
    assert "x-other" not in resp.headers
    resp.headers = resp.headers
    assert _sent(resp)[1] == [(b"x-only", b"1"), (b"content-type", b"text/plain"), (b"content-length", b"3")]


def test_cookies_are_written_as_werkzeug_writes_them() -> None:
    resp = AMLResponse("x", 200)
    resp.set_cookie("session", "a b", httponly=True, samesite="strict", domain=".example.com")
    resp.set_cookie("plain", "v", expires=0)  # an int is a Unix time, as in Werkzeug (Starlette: seconds from now)
    resp.delete_cookie("old", path="/x")
    assert _values(_sent(resp)[1], b"set-cookie") == [
        b'session="a b"; Domain=example.com; HttpOnly; Path=/; SameSite=Strict',
        b"plain=v; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/",
        b"old=; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=/x",
    ]
    with pytest.raises(ValueError, match="SameSite"):
        resp.set_cookie("bad", samesite="sometimes")


def test_body_changes_carry_content_length() -> None:
    resp = AMLResponse("short", 200)
    resp.data = "a much longer body, é"
    assert resp.content_length == len("a much longer body, é".encode()) == len(resp.get_data())
    status, headers, body = _sent(resp)
    assert body == "a much longer body, é".encode() and _values(headers, b"content-length") == [str(len(body)).encode()]
    resp.set_data(b"xy")
    assert (resp.data, resp.get_data(as_text=True), resp.content_length) == (b"xy", "xy", 2)
    assert _values(_sent(resp)[1], b"content-length") == [b"2"]
    resp.content_length = None
    assert resp.content_length is None and _values(resp.raw_headers, b"content-length") == []


def test_reading_a_streamed_body_reads_it_whole() -> None:
    closed: list[bool] = []

    def chunks() -> Iterator[str | bytes]:
        try:
            yield "a"
            yield b"b"
        finally:
            closed.append(True)

    resp = AMLResponse(chunks(), 200)
    assert resp.is_streamed and resp.content_length is None
    assert resp.get_data() == b"ab" and closed == [True]
    assert not resp.is_streamed and resp.content_length == 2
    assert _sent(resp)[2] == b"ab"

    async def async_chunks() -> AsyncIterator[bytes]:
        yield b"a"

    with pytest.raises(RuntimeError, match="async iterator"):
        AMLResponse(async_chunks(), 200).get_data()


def test_json() -> None:
    resp = AMLResponse({"a": 1}, 200)
    assert (resp.is_json, resp.get_json(), resp.json) == (True, {"a": 1}, {"a": 1})
    text = AMLResponse("{not json", 200)
    assert (text.is_json, text.get_json(), text.get_json(force=True, silent=True)) == (False, None, None)
    with pytest.raises(ValueError):
        text.get_json(force=True)
    text.mimetype = "application/problem+json"
    assert text.is_json


def test_nothing_is_made_for_attributes_nobody_touched() -> None:
    resp = AMLResponse("x", 200, {"X-A": "1"})
    assert set(vars(resp)) == {"status_code", "media_type", "background", "body", "raw_headers"}


@pytest.mark.slow
def test_changes_after_construction_reach_the_client(serve: ServerFactory) -> None:
    server = serve("ref_binary.py")
    changed = server.post("/score?changed=1", content=b"")
    assert (changed.status_code, changed.text) == (201, "a longer body than the first")
    assert changed.headers["content-length"] == str(len(changed.content))
    assert changed.headers["access-control-allow-origin"] == "http://www.example.com"
    assert changed.headers.get_list("x-added") == ["a", "b"] and changed.headers["x-count"] == "3"
    assert "x-built" not in changed.headers
    assert changed.headers["set-cookie"] == "session=abc; HttpOnly; Path=/"
    assert changed.headers["x-ms-run-function-failed"] == "False" and "x-ms-run-fn-exec-ms" in changed.headers
    streamed = server.post("/score?stream=1", content=b"")
    assert (streamed.text, streamed.headers["content-type"]) == ("chunk1 chunk2", "text/plain")
    assert "content-length" not in streamed.headers
