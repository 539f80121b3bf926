"""CORS (AML_CORS_ORIGINS) against real servers, for every script mode."""

from __future__ import annotations

import json

import pytest

from tests.conftest import ServerFactory
from tests.helpers import SAMPLES

ORIGINS = "https://a.example, HTTPS://B.example"
PREFLIGHT = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "X-Foo, Content-Type"}


@pytest.mark.slow
def test_allowed_other_and_missing_origins(serve: ServerFactory, workers: int) -> None:
    server = serve("swagger_numpy.py", workers=workers, env={"AML_CORS_ORIGINS": ORIGINS})
    body = {"data": list(range(10))}
    allowed = server.post("/score", json=body, headers={"Origin": "https://b.example"})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://b.example"  # compared case-insensitively
    assert allowed.headers["vary"] == "Origin"
    assert "x-request-id" in allowed.headers["access-control-expose-headers"]
    other = server.post("/score", json=body, headers={"Origin": "https://evil.example"})
    assert other.status_code == 200 and "access-control-allow-origin" not in other.headers
    assert other.headers["vary"] == "Origin"
    missing = server.post("/score", json=body)
    assert "access-control-allow-origin" not in missing.headers and missing.headers["vary"] == "Origin"
    for path in ("/", "/swagger.json", "/docs"):
        assert server.get(path, headers={"Origin": "https://a.example"}).headers["access-control-allow-origin"] == (
            "https://a.example"
        )
    assert "access-control-allow-origin" not in server.get("/nope", headers={"Origin": "https://a.example"}).headers
    assert "Enabling CORS for the following origins: https://a.example, HTTPS://B.example" in server.log()


@pytest.mark.slow
@pytest.mark.parametrize("script", ["swagger_numpy.py", "returns.py", "raw_request_api.py"])
def test_preflight_is_answered_for_every_script_mode(serve: ServerFactory, script: str) -> None:
    server = serve(script, env={"AML_CORS_ORIGINS": ORIGINS})
    response = server.request("OPTIONS", "/score", headers={"Origin": "https://a.example", **PREFLIGHT})
    assert (response.status_code, response.content) == (200, b"")
    assert response.headers["access-control-allow-origin"] == "https://a.example"
    assert response.headers["access-control-allow-methods"] == "GET, POST"
    assert response.headers["access-control-allow-headers"] == "Content-Type, X-Foo"
    assert response.headers["access-control-max-age"] == "600"
    assert response.headers["vary"] == "Origin"
    assert "x-ms-run-fn-exec-ms" not in response.headers  # run() was not called, raw mode included
    assert "x-request-id" in response.headers

    denied = server.request("OPTIONS", "/score", headers={"Origin": "https://evil.example", **PREFLIGHT})
    assert denied.status_code == 200 and "access-control-allow-origin" not in denied.headers
    delete = server.request(
        "OPTIONS", "/score", headers={"Origin": "https://a.example", "Access-Control-Request-Method": "DELETE"}
    )
    assert "access-control-allow-methods" not in delete.headers


@pytest.mark.slow
def test_raw_options_without_preflight_headers_still_reach_run(serve: ServerFactory) -> None:
    server = serve("raw_request_api.py", env={"AML_CORS_ORIGINS": "*"})
    response = server.request("OPTIONS", "/score", headers={"Origin": "https://any.example"})
    assert response.json()["method"] == "OPTIONS"
    assert response.headers["access-control-allow-origin"] == "https://any.example"


@pytest.mark.slow
def test_cors_headers_set_by_run_are_left_alone(serve: ServerFactory) -> None:
    server = serve("raw_binary.py", env={"AML_CORS_ORIGINS": "*"})
    response = server.post("/score?cors=1", content=b"x", headers={"Origin": "https://any.example"})
    assert response.headers.get_list("access-control-allow-origin") == ["http://www.example.com"]
    assert "access-control-expose-headers" not in response.headers and "vary" not in response.headers


@pytest.mark.slow
def test_without_cors_settings_there_are_no_cors_headers(serve: ServerFactory) -> None:
    server = serve("raw_request_api.py")
    response = server.request("OPTIONS", "/score", headers={"Origin": "https://a.example", **PREFLIGHT})
    assert response.json()["method"] == "OPTIONS"  # the reference's behaviour: a raw run() answers preflights
    assert not any(name.startswith("access-control") for name in response.headers)
    assert "vary" not in response.headers


@pytest.mark.slow
def test_routes_with_a_model_name_in_their_path_have_cors(serve: ServerFactory) -> None:
    """A page calling the Open Inference Protocol sends a preflight first (a JSON POST is not a simple request)."""
    model = SAMPLES / "iris" / "model"
    server = serve(None, "--model_dir", str(model), "--model_name", "iris", env={"AML_CORS_ORIGINS": ORIGINS})
    origin = {"Origin": "https://a.example"}
    for path in ("/v2/models/iris/infer", "/v2/models/iris/versions/1/infer", "/v1/models/iris:predict"):
        preflight = server.request("OPTIONS", path, headers={**origin, **PREFLIGHT})
        assert preflight.status_code == 200, path
        assert preflight.headers["access-control-allow-methods"] == "GET, POST"
    rows = json.loads((SAMPLES / "iris" / "sample-request.json").read_bytes())["data"]
    tensor = {"name": "input-0", "shape": [len(rows), len(rows[0])], "datatype": "FP64", "data": sum(rows, [])}
    answer = server.post("/v2/models/iris/infer", json={"inputs": [tensor]}, headers=origin)
    assert answer.status_code == 200, answer.text
    assert answer.headers["access-control-allow-origin"] == "https://a.example"
    metadata = server.get("/v2/models/iris", headers=origin)
    assert metadata.headers["access-control-allow-origin"] == "https://a.example"
    # One path segment per parameter, as the router has it: a path no route serves gets no CORS headers.
    assert "access-control-allow-origin" not in server.get("/v2/models/iris/x/ready", headers=origin).headers
