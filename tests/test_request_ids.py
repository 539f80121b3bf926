from __future__ import annotations

import pytest

from scoring_runtime.request_context import derive_ids

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
