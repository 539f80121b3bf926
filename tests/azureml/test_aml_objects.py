"""AMLRequest / AMLResponse / form parsing, in process (the real-server behaviour is in test_rawhttp.py)."""

from __future__ import annotations

from typing import Any

import pytest

from scoring_runtime.azureml.aml_request import AMLRequest
from scoring_runtime.azureml.aml_response import AMLResponse
from scoring_runtime.azureml.forms import MultiDict, parse_form


def _scope(headers: list[tuple[bytes, bytes]], query: bytes = b"") -> dict[str, Any]:
    return {
        "type": "http",
        "method": "POST",
        "path": "/score",
        "query_string": query,
        "headers": headers,
        "client": ("10.0.0.1", 5000),
        "server": ("127.0.0.1", 5001),
        "scheme": "http",
    }


def test_aml_response_bodies_and_headers() -> None:
    assert AMLResponse(None, 200).body == b"{}"
    assert AMLResponse({"a": 1}, 200).body == b'{"a": 1}'  # a dict is JSON, not its concatenated keys
    assert AMLResponse([1, "x"], 200, json_str=True).body == b'[1, "x"]'
    split = AMLResponse("x", 200, {"b": "A, B, C", "Content-Type": "text/csv"})
    assert [v for k, v in split.raw_headers if k == b"b"] == [b"A", b"B", b"C"]
    assert [v for k, v in split.raw_headers if k == b"content-type"] == [b"text/csv"]
    flagged = AMLResponse("x", 299, run_function_failed=True)
    assert (b"x-ms-run-function-failed", b"True") in flagged.raw_headers
    assert (b"x-ms-run-function-failed", b"True") in AMLResponse("x", 555).raw_headers
    assert (b"x-ms-run-function-failed", b"False") in AMLResponse("x", 444).raw_headers
    streamed = AMLResponse(iter(["a"]), 200)
    assert streamed.stream is not None and b"content-length" not in dict(streamed.raw_headers)
    with pytest.raises(TypeError, match="cannot send a int"):
        AMLResponse(5, 200)


def test_headers_are_case_insensitive_and_joined() -> None:
    request = AMLRequest(
        _scope([(b"x-a", b"1"), (b"x-a", b"2"), (b"content-type", b"text/plain; charset=latin-1")]), b""
    )
    assert request.headers["X-A"] == request.headers.get("x-a") == "1,2"
    first: object = next(iter(request.headers))  # iterated as (name, value) pairs, as Flask's headers are
    assert "x-A" in request.headers and first == ("X-A", "1,2")
    assert request.mimetype == "text/plain" and request.mimetype_params == {"charset": "latin-1"}
    assert request.host == "127.0.0.1:5001" and request.url == "http://127.0.0.1:5001/score"
    assert request.remote_addr == "10.0.0.1"
    with pytest.raises(ValueError, match="Content-Type"):
        request.get_json()
    assert request.get_json(silent=True) is None


def test_multidict_follows_werkzeug() -> None:
    values = MultiDict([("a", "1"), ("a", "2"), ("b", "x")])
    assert (values["a"], values.get("a", type=int), values.getlist("a", type=int)) == ("1", 1, [1, 2])
    assert values.get("b", 0, type=int) == 0 and values.get("missing") is None
    assert values.to_dict() == {"a": "1", "b": "x"} and values.to_dict(flat=False) == {"a": ["1", "2"], "b": ["x"]}


def test_malformed_multipart_gives_no_form_rather_than_an_error() -> None:
    form, files = parse_form(b"--xx\r\ngarbage", "multipart/form-data; boundary=xx")
    assert (dict(form), dict(files)) == ({}, {})
    form, files = parse_form(b"a=1", "multipart/form-data")  # no boundary
    assert (dict(form), dict(files)) == ({}, {})
