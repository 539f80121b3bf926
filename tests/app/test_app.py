"""Fine-grained HTTP behaviour, in-process through Starlette's TestClient (the lifespan runs, so init() does too)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from scoring_runtime import create_app
from tests.helpers import SCRIPTS

NOT_FOUND = (
    "The requested URL was not found on the server. If you entered the URL manually please check your spelling and "
    "try again."
)
RUN_FAILED = "An unexpected error occurred in scoring script. Check the logs for more info."
INTERNAL = "An unexpected internal error occurred. Check the logs for more info."


def client_for(script: str, **settings: Any) -> TestClient:
    return TestClient(create_app(entry_script=SCRIPTS / script, **settings))


@pytest.fixture
def returns() -> Iterator[TestClient]:
    with client_for("returns.py") as client:
        yield client


@pytest.fixture
def typed() -> Iterator[TestClient]:
    with client_for("typed_num.py") as client:
        yield client


def test_health(returns: TestClient) -> None:
    response = returns.get("/")
    assert (response.status_code, response.text) == (200, "Healthy")
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert "x-ms-run-function-failed" not in response.headers
    assert returns.head("/").status_code == 200
    options = returns.options("/")
    assert (options.status_code, options.text, options.headers["allow"]) == (200, "", "GET, HEAD, OPTIONS")


@pytest.mark.parametrize(("method", "path"), [("DELETE", "/"), ("PUT", "/score"), ("PATCH", "/score"), ("POST", "/")])
def test_routing_405(returns: TestClient, method: str, path: str) -> None:
    response = returns.request(method, path)
    assert response.status_code == 405
    assert response.content == b'{"message": "The method is not allowed for the requested URL."}'
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-ms-run-function-failed"] == "False"
    assert "allow" in response.headers and "x-request-id" in response.headers


@pytest.mark.parametrize("path", ["/nope", "/score/", "/swagger.json/", "/Score"])
def test_404(returns: TestClient, path: str) -> None:
    response = returns.get(path)
    assert (response.status_code, response.json()) == (404, {"message": NOT_FOUND})
    assert response.headers["x-ms-run-function-failed"] == "False"


def test_options_and_head_on_non_raw_script(typed: TestClient) -> None:
    options = typed.options("/score")
    assert (options.status_code, options.content) == (200, b"")
    assert options.headers["content-type"] == "text/html; charset=utf-8"
    assert options.headers["x-ms-run-function-failed"] == "False"
    assert "x-ms-run-fn-exec-ms" not in options.headers and "x-request-id" in options.headers
    head = typed.head("/score")
    assert head.status_code == 405 and head.headers["x-ms-run-function-failed"] == "False"
    assert typed.post("/score", content=b"{}").headers  # the server still serves


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("none", {}),
        ("dict", {"a": 1, "b": [1, 2], "c": "é"}),
        ("list", [1, 2.5, "x", None, True]),
        ("tuple", [1, 2]),
        ("str", "hello"),
        ("int", 7),
        ("nan", {"x": None, "y": None}),
        ("ndarray", [[1.0, 2.0], [3.0, None]]),
        ("ndarray_int", [1, 4]),
        ("npscalar", {"f": 1.5, "i": 3, "b": True}),
        ("dataframe", [{"a": 1, "b": "x", "c": 0.5}, {"a": 2, "b": "y", "c": None}]),
        ("series", [3, 4, 5]),
        ("timestamps", [{"t": "2020-01-01T00:00:00"}, {"t": None}]),
        ("bigint", 2**70),
        ("datetime", "2020-01-02T03:04:05"),
    ],
)
def test_json_return_values(returns: TestClient, kind: str, expected: object) -> None:
    response = returns.post("/score", content=kind)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == expected
    assert response.headers["x-ms-run-function-failed"] == "False"
    assert float(response.headers["x-ms-run-fn-exec-ms"]) >= 0
    assert len(response.headers["x-ms-run-fn-exec-ms"].split(".")[1]) == 3


def test_bytes_are_octet_stream(returns: TestClient) -> None:
    response = returns.post("/score", content="bytes")
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.content == b"\x00\x01binary\xff"


def test_unencodable_result_is_internal_error(returns: TestClient) -> None:
    response = returns.post("/score", content="set")
    assert (response.status_code, response.json()) == (500, {"message": INTERNAL})
    assert response.headers["x-ms-run-function-failed"] == "False"


def test_aml_responses(returns: TestClient) -> None:
    failed = returns.post("/score", content="response500")
    assert (failed.status_code, failed.text, failed.headers["x-ms-run-function-failed"]) == (503, "broken", "True")
    assert "x-ms-run-fn-exec-ms" in failed.headers
    as_json = returns.post("/score", content="response_json")
    assert (as_json.status_code, as_json.json(), as_json.headers["content-type"]) == (
        201,
        {"k": "v"},
        "application/json",
    )
    empty = returns.post("/score", content="response_none")
    assert (empty.status_code, empty.content, empty.headers["x-ms-run-function-failed"]) == (333, b"{}", "False")
    text = returns.post("/score", content="response_text", headers={"x-request-id": "from-client"})
    assert (text.status_code, text.text) == (444, "test")
    assert text.headers.get_list("content-type") == ["text/plain"]  # no duplicate Content-Type, unlike the reference
    assert text.headers.get_list("x-request-id") == ["from-client"]  # the server's id wins over run()'s


def test_run_exception_is_500_with_failed_flag() -> None:
    with client_for("raises.py") as client:
        response = client.post("/score", content="x")
        assert response.status_code == 500
        assert response.content == json.dumps({"message": RUN_FAILED}).encode()
        assert response.headers["x-ms-run-function-failed"] == "True"
        assert "x-ms-run-fn-exec-ms" not in response.headers
        assert client.post("/score", content="exit").status_code == 500
        assert client.get("/").status_code == 200


def test_plain_mode_inputs() -> None:
    with client_for("plain_default.py") as client:
        posted = client.post("/score", content='{"data": "some plain text"}', headers={"content-type": "text/plain"})
        assert posted.json() == {"data": '{"data": "some plain text"}', "color": "red"}
        got = client.get("/score?a=1&e=null&b=x&b=2")
        assert got.json()["data"] == '{"a": 1, "e": null, "b": ["x", 2]}'
        form = client.post("/score", content="a=1&b=2", headers={"content-type": "application/x-www-form-urlencoded"})
        assert form.json()["data"] == "a=1&b=2"  # the reference would hand run() an empty string here
        bad = client.post("/score", content=b"\xff")
        assert bad.status_code == 400 and bad.json()["message"].startswith("Input cannot be decoded as UTF-8: ")


def test_typed_mode_inputs(typed: TestClient) -> None:
    assert typed.get("/score?num=10").json() == {"double": 20, "color": "red", "test_header": None}
    posted = typed.post("/score", json={"num": 4, "color": "blue", "extra": 1}, headers={"test-header": "hi"})
    assert posted.json() == {"double": 8, "color": "blue", "test_header": "hi"}
    missing = typed.post("/score", json={"color": "blue"})
    assert (missing.status_code, missing.json()) == (
        400,
        {"message": "A value is not provided for the 'num' parameter."},
    )
    wrong = typed.post("/score", json={"num": "ten"})
    assert wrong.status_code == 400
    assert wrong.json()["message"] == (
        "Invalid value for the 'num' parameter: Invalid input data type to parse. "
        "Expected: <class 'int'> but got <class 'str'>"
    )
    assert wrong.headers["x-ms-run-function-failed"] == "False"
    user_error = typed.post("/score", json={"num": 13})
    assert (user_error.status_code, user_error.json()["message"]) == (500, RUN_FAILED)
    assert user_error.headers["x-ms-run-function-failed"] == "True"
    assert typed.post("/score", content=b"{}", headers={"content-type": "text/plain"}).status_code == 415


def test_typed_numpy_and_pandas() -> None:
    with client_for("typed_numpy.py") as client:
        assert client.post("/score", json={"data": [[1, 2, 3], [4, 5, 6]]}).json() == [6.0, 15.0]
        bad = client.post("/score", json={"data": [[1, 2]]})
        assert bad.status_code == 400 and "'data'" in bad.json()["message"]
        assert client.post("/score", json={"data": [[-1, 2, 3]]}).status_code == 500
    with client_for("typed_pandas.py") as client:
        rows = [{"a": 1.5, "b": 2, "name": "x"}, {"a": 0.5, "b": 1, "name": "y"}]
        assert client.post("/score", json={"frame": rows}).json() == [
            {"a": 1.5, "b": 2, "name": "x", "total": 3.5},
            {"a": 0.5, "b": 1, "name": "y", "total": 1.5},
        ]
        missing_column = client.post("/score", json={"frame": [{"a": 1.5, "b": 2}]})
        assert missing_column.status_code == 400 and "'frame'" in missing_column.json()["message"]


def test_raw_mode() -> None:
    with client_for("raw_echo.py") as client:
        response = client.post(
            "/score?x=1", content=b"[1, 2, 3]", headers={"Test-Header": "t", "content-type": "text/plain"}
        )
        assert response.json() == {
            "method": "POST",
            "args": {"x": "1"},
            "body": "[1, 2, 3]",
            "content_type": "text/plain",
            "header": "t",
            "color": "red",
        }
        assert response.headers.get_list("x-custom") == ["a", "b", "c"]
        assert client.get("/score").json()["method"] == "GET"
        assert client.options("/score").json()["method"] == "OPTIONS"  # OPTIONS reaches a raw run()
        assert client.head("/score").status_code == 200
        failed = client.get("/score?status=502")
        assert failed.headers.get_list("x-ms-run-function-failed") == ["True"]


def test_request_id_headers(returns: TestClient) -> None:
    response = returns.post("/score", content="int", headers={"x-request-id": "abc", "TraceId": "trace-1"})
    assert (response.headers["x-request-id"], response.headers["x-ms-request-id"]) == ("abc", "abc")
    assert response.headers["traceid"] == "trace-1"
    assert "x-ms-client-request-id" not in response.headers
    assert response.headers["x-ms-server-version"].startswith("scoring_runtime/")
    both = returns.post("/score", content="int", headers={"x-ms-request-id": "L", "x-ms-client-request-id": "C"})
    assert (both.headers["x-ms-request-id"], both.headers["x-ms-client-request-id"]) == ("L", "C")
    too_long = returns.post("/score", content="int", headers={"x-ms-client-request-id": "c" * 101, "x-request-id": "r"})
    assert too_long.status_code == 431
    assert too_long.json() == {"message": "x-ms-request-id and x-ms-client-request-id must not exceed 100 characters"}
    assert too_long.headers["x-request-id"] == "r" and "x-ms-request-id" not in too_long.headers
    # As the reference's after-request hook does for its 431: the server version, and the TraceId echo.
    assert too_long.headers["x-ms-server-version"].startswith("scoring_runtime/")
    long_id = {"x-request-id": "r" * 101, "TraceId": "t-431"}
    refused = returns.post("/score", content="int", headers=long_id)
    assert (refused.status_code, refused.headers["traceid"]) == (431, "t-431")
    assert "x-request-id" not in refused.headers and refused.headers["x-ms-server-version"].startswith("scoring_")
    assert returns.get("/swagger.json", headers=long_id).status_code == 431
    # Where the reference routes nothing, its 404 and 405 come before the id check.
    assert returns.get("/nope", headers=long_id).status_code == 404
    assert returns.request("DELETE", "/score", headers=long_id).status_code == 405
    assert returns.post("/swagger.json", headers=long_id).status_code == 405
    probe = returns.get("/", headers={"x-request-id": "r" * 101})
    assert (probe.status_code, probe.text) == (200, "Healthy")  # liveness never fails on an id header
    for path in ("/nope", "/score"):
        assert "x-request-id" in returns.request("DELETE", path).headers


def test_server_version_header_can_be_disabled() -> None:
    with client_for("returns.py", server_version_header=False) as client:
        assert "x-ms-server-version" not in client.post("/score", content="int").headers


def test_async_run_is_awaited() -> None:
    with client_for("async_run.py") as client:
        assert client.post("/score", content="0").json()["async"] is True
    with client_for("typed_async.py") as client:
        assert client.post("/score", json={"seconds": 0}).json() == {"slept": 0}
        assert client.post("/score", json={"seconds": "x"}).status_code == 400


def test_scoring_timeout_sync_and_async() -> None:
    for script in ("sleepy.py", "async_run.py"):
        with client_for(script, scoring_timeout_ms=200) as client:
            response = client.post("/score", content="2")
            assert (response.status_code, response.json()) == (500, {"message": "Scoring timeout after 200 ms"})
            assert response.headers["x-ms-run-function-failed"] == "True"


def test_init_and_run_share_the_run_thread() -> None:
    with client_for("init_pid.py") as client:
        body = client.post("/score", content="").json()
        assert body["init_calls"] == 1
        assert body["init_thread"] == body["run_thread"] == "scoring-run-0"


def test_async_init_is_awaited() -> None:
    with client_for("async_init.py") as client:
        body = client.post("/score", content="").json()
        assert body["loaded_in"] == body["pid"]
