"""The @rawhttp contract against real servers: the request API, methods, AMLResponse, binary bodies, imports."""

from __future__ import annotations

import importlib
import os
import sys

import pytest

import scoring_runtime
from scoring_runtime.azureml import register_azureml_aliases
from tests.conftest import ServerFactory


def test_azureml_import_paths_work_without_azureml_installed() -> None:
    for name in [n for n in sys.modules if n.startswith("azureml")]:
        del sys.modules[name]
    with pytest.raises(ImportError):
        importlib.import_module("azureml.contrib.services.aml_request")
    register_azureml_aliases()
    namespace: dict[str, object] = {}
    exec(
        "from azureml.contrib.services.aml_request import AMLRequest, rawhttp\n"
        "from azureml.contrib.services.aml_response import AMLResponse\n",
        namespace,
    )
    assert namespace["AMLRequest"] is scoring_runtime.AMLRequest
    assert namespace["AMLResponse"] is scoring_runtime.AMLResponse
    assert namespace["rawhttp"] is scoring_runtime.rawhttp


@pytest.mark.slow
def test_request_api(serve: ServerFactory, workers: int) -> None:
    server = serve("raw_request_api.py", workers=workers)
    report = server.post(
        "/score?n=5&n=6&word=abc",
        json={"x": [1, 2]},
        headers={"Test-Header": "t1", "Cookie": "session=abc; theme=dark"},
    ).json()
    port = server.port
    assert report["method"] == "POST"
    assert (report["path"], report["full_path"]) == ("/score", "/score?n=5&n=6&word=abc")
    assert report["url"] == f"http://127.0.0.1:{port}/score?n=5&n=6&word=abc"
    assert report["args"] == {"n": ["5", "6"], "word": ["abc"]}
    assert (report["n"], report["bad_n"]) == (5, -1)  # Werkzeug's `type=` conversion, first value
    assert report["headers"]["Test-Header"] == "t1" and report["test_header"] == "t1"
    assert "Content-Type" in report["header_pairs"]  # iterating gives (Name, value) pairs, in Werkzeug's spelling
    assert report["json"] == {"x": [1, 2]} and report["is_json"] is True
    assert report["text"] == '{"x":[1,2]}' and report["data_len"] == 11
    assert report["positional_cache_flag"] is True  # get_data(False) is Flask's `cache=False`, still bytes
    assert (report["content_type"], report["mimetype"]) == ("application/json", "application/json")
    assert report["query_string"] == "n=5&n=6&word=abc"
    assert report["remote_addr"] == "127.0.0.1"
    assert report["cookies"] == {"session": "abc", "theme": "dark"}
    assert report["form"] == {} and report["files"] == {}

    form = server.post("/score?a=1", data={"name": "Zoë", "tag": ["x", "y"]}).json()
    assert form["form"] == {"name": ["Zoë"], "tag": ["x", "y"]}
    assert form["values"] == {"a": "1", "name": "Zoë", "tag": "x"}
    assert form["json"] is None  # get_json(silent=True) on a form

    png = b"\x89PNG\r\n\x1a\n" + os.urandom(5000)
    upload = server.post(
        "/score", data={"label": "cat"}, files={"image": ("cat.png", png, "image/png"), "notes": ("n.txt", b"hi")}
    ).json()
    assert upload["form"] == {"label": ["cat"]}
    assert upload["files"] == {
        "image": {"filename": "cat.png", "content_type": "image/png", "size": len(png)},
        "notes": {"filename": "n.txt", "content_type": "text/plain", "size": 2},
    }
    assert upload["mimetype"] == "multipart/form-data"

    bad_json = server.post("/score?strict_json=1", content=b"{not json", headers={"content-type": "application/json"})
    assert bad_json.status_code == 500 and bad_json.headers["x-ms-run-function-failed"] == "True"


@pytest.mark.slow
def test_every_method_reaches_run(serve: ServerFactory) -> None:
    server = serve("raw_request_api.py")
    for method in ("GET", "POST", "OPTIONS"):
        response = server.request(method, "/score?n=1")
        assert (response.status_code, response.json()["method"]) == (200, method)
    head = server.request("HEAD", "/score")
    assert (head.status_code, head.headers["x-method"], head.content) == (204, "HEAD", b"")
    for method in ("PUT", "PATCH", "DELETE"):
        assert server.request(method, "/score").status_code == 405


@pytest.mark.slow
def test_binary_bodies_byte_for_byte(serve: ServerFactory, workers: int) -> None:
    server = serve("raw_binary.py", workers=workers)
    blob = os.urandom(1024 * 1024)
    echoed = server.post("/score", content=blob, headers={"Content-Type": "application/octet-stream"})
    assert echoed.status_code == 200 and echoed.content == blob
    assert echoed.headers.get_list("content-type") == ["application/octet-stream"]
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + os.urandom(2048)
    image = server.post("/score?upload=1", files={"image": ("x.png", png, "image/png")})
    assert (image.content, image.headers["content-type"]) == (png, "image/png")
    got = server.get("/score?q=1")
    assert (got.content, got.headers["content-type"]) == (b"/score?q=1", "text/html; charset=utf-8")


@pytest.mark.slow
def test_aml_response_semantics(serve: ServerFactory) -> None:
    server = serve("returns.py")
    assert server.post("/score", content="response_none").content == b"{}"
    as_json = server.post("/score", content="response_json")
    assert (as_json.status_code, as_json.content) == (201, b'{"k": "v"}')  # json.dumps, as the reference
    text = server.post("/score", content="response_text")
    assert text.headers.get_list("content-type") == ["text/plain"]
    failed = server.post("/score", content="response500")
    assert failed.headers.get_list("x-ms-run-function-failed") == ["True"]


@pytest.mark.slow
def test_plain_starlette_response_passes_through(serve: ServerFactory) -> None:
    server = serve("raw_binary.py")
    response = server.get("/score?plain=1")
    assert (response.status_code, response.text, response.headers["x-plain"]) == (
        202,
        "a plain starlette response",
        "1",
    )
    assert "x-ms-run-fn-exec-ms" in response.headers
