from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

import pytest
from starlette.types import Message, Receive, Scope, Send

from scoring_runtime.app.request_context import RequestContext, derive_ids, new_request_id

GEN = "<generated>"


def ids_for(**headers: str) -> tuple[str, str, str]:
    raw = [(name.replace("_", "-").lower().encode(), value.encode()) for name, value in headers.items()]
    ids = derive_ids(raw)
    assert ids.rejection is None
    return ids.request_id, ids.legacy_id, ids.client_id


# Spec section 5: request R / L / C -> response x-request-id / x-ms-request-id / x-ms-client-request-id.
@pytest.mark.parametrize(
    ("sent", "expected"),
    [
        ({}, (GEN, GEN, "")),
        ({"x_request_id": "A"}, ("A", "A", "")),
        ({"x_ms_request_id": "B"}, (GEN, "B", "B")),
        ({"x_ms_client_request_id": "C"}, (GEN, "C", "C")),
        ({"x_request_id": "A", "x_ms_request_id": "B"}, ("A", "B", "B")),
        ({"x_ms_request_id": "B", "x_ms_client_request_id": "C"}, (GEN, "B", "C")),
        ({"x_request_id": "A", "x_ms_client_request_id": "C"}, ("A", "C", "C")),
        ({"x_request_id": "A", "x_ms_request_id": "B", "x_ms_client_request_id": "C"}, ("A", "B", "C")),
    ],
)
def test_id_table(sent: dict[str, str], expected: tuple[str, str, str]) -> None:
    request_id, legacy, client = ids_for(**sent)
    if expected[0] == GEN:
        assert len(request_id) == 36 and request_id.count("-") == 4
        expected = (request_id, request_id if expected[1] == GEN else expected[1], expected[2])
    assert (request_id, legacy, client) == expected


def test_empty_request_id_sends_no_id_headers() -> None:
    ids = derive_ids([(b"x-request-id", b"")])
    assert ids.response_headers() == []


def test_too_long_ids() -> None:
    assert derive_ids([(b"x-request-id", b"a" * 100)]).rejection is None
    ids = derive_ids([(b"x-request-id", b"a" * 101)])
    assert ids.rejection == "x-request-id must not exceed 100 characters"
    assert ids.response_headers() == []
    for name in (b"x-ms-request-id", b"x-ms-client-request-id"):
        ids = derive_ids([(b"x-request-id", b"mine"), (name, b"b" * 101)])
        assert ids.rejection == "x-ms-request-id and x-ms-client-request-id must not exceed 100 characters"
        assert ids.response_headers() == [(b"x-request-id", b"mine")]


def test_trace_id_is_echoed() -> None:
    ids = derive_ids([(b"traceid", b"t-1")])
    assert (b"traceid", b"t-1") in ids.response_headers()


@pytest.mark.parametrize("case", [str.lower, str.title], ids=["lower", "mixed-case"])
def test_headers_the_server_sets_replace_the_responses_own(case: Callable[[str], str]) -> None:
    sent: list[Message] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(case(name).encode(), value) for name, value in RESPONSE_HEADERS]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"ok"})

    async def send(message: Message) -> None:
        sent.append(message)

    async def receive() -> Message:
        return {"type": "http.disconnect"}

    scope = {"type": "http", "method": "GET", "path": "/x", "query_string": b"", "headers": [(b"x-request-id", b"r-1")]}
    asyncio.run(RequestContext(app, "ours/1")(scope, receive, send))
    names = [name.lower() for name, _ in sent[0]["headers"]]
    assert sorted(names) == sorted(
        {b"content-length", b"x-other", b"x-request-id", b"x-ms-request-id", b"x-ms-server-version"}
    )
    headers = {name.lower(): value for name, value in sent[0]["headers"]}
    assert (headers[b"x-request-id"], headers[b"x-ms-server-version"], headers[b"x-other"]) == (
        b"r-1",
        b"ours/1",
        b"kept",
    )


RESPONSE_HEADERS = [
    ("content-length", b"2"),
    ("x-request-id", b"from-the-script"),
    ("x-ms-server-version", b"theirs"),
    ("x-other", b"kept"),
]


def test_request_ids_are_version_4_uuids() -> None:
    ids = {new_request_id() for _ in range(20_000)}
    assert len(ids) == 20_000
    for text in list(ids)[:500]:
        parsed = uuid.UUID(text)
        assert (parsed.version, parsed.variant, str(parsed)) == (4, uuid.RFC_4122, text)
