"""Repeated request headers reach run() as the reference gives them: one value, joined with "," and no space.

gunicorn joins a repeated field into the WSGI environ with "," (gunicorn/http/wsgi.py), and Werkzeug's headers, which
both `request_headers` and a raw run()'s `request.headers` are read from, see that one value.
"""

from __future__ import annotations

import http.client
import json
from typing import Any

import pytest
from starlette.testclient import TestClient

from scoring_runtime import create_app
from scoring_runtime.azureml.aml_request import AMLRequest, RequestHeaders
from tests.conftest import ServerFactory
from tests.helpers import SCRIPTS

REPEATED = [("X-Dup", "one"), ("X-Dup", "two"), ("x-dup", "three"), ("Test-Header", "t")]


def test_repeated_headers_are_joined_without_a_space() -> None:
    raw = [(b"x-dup", b"one"), (b"test-header", b"t"), (b"X-DUP", b"two"), (b"x-dup", b""), (b"x-dup", b"a, b")]
    headers = RequestHeaders(raw)
    assert headers.to_dict() == {"X-Dup": "one,two,,a, b", "Test-Header": "t"}  # empty values kept, as gunicorn does
    assert headers["x-dup"] == headers.get("X-DUP") == "one,two,,a, b"
    assert headers.getlist("x-dup") == ["one,two,,a, b"]
    assert RequestHeaders([(b"x-one", b"1")]).to_dict() == {"X-One": "1"}


def test_raw_request_headers_are_joined_the_same_way() -> None:
    scope = {"method": "GET", "path": "/score", "headers": [(b"x-dup", b"one"), (b"x-dup", b"two")]}
    pairs: object = list(AMLRequest(scope, b"").headers)  # iterated as (name, value) pairs, as Flask's headers are
    assert pairs == [("X-Dup", "one,two")]


def test_request_headers_parameter_in_process() -> None:
    with TestClient(create_app(entry_script=SCRIPTS / "headers_echo.py")) as client:
        echoed = client.get("/score", headers=REPEATED).json()
    assert (echoed["X-Dup"], echoed["Test-Header"]) == ("one,two,three", "t")


def request(port: int, method: str, headers: list[tuple[str, str]]) -> Any:
    """A request that sends each of `headers` as its own field (httpx would merge them)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.putrequest(method, "/score")
        for name, value in headers:
            connection.putheader(name, value)
        body = b"{}" if method == "POST" else None
        if body is not None:
            connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        response = connection.getresponse()
        assert response.status == 200
        return json.loads(response.read())
    finally:
        connection.close()


@pytest.mark.slow
def test_request_headers_parameter(serve: ServerFactory, workers: int) -> None:
    server = serve("headers_echo.py", workers=workers)
    for method in ("GET", "POST"):
        echoed = request(server.port, method, REPEATED)
        assert (echoed["X-Dup"], echoed["Test-Header"]) == ("one,two,three", "t")


@pytest.mark.slow
def test_raw_request_headers(serve: ServerFactory) -> None:
    server = serve("headers_raw.py")
    assert request(server.port, "GET", REPEATED) == {
        "get": "one,two,three",
        "getlist": ["one,two,three"],
        "pairs": [["X-Dup", "one,two,three"]],
    }
