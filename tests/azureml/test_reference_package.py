"""Scripts run where the reference package itself is installed (Azure ML's base images have it): its @rawhttp, which
sets a flag in its module, switches run() to raw mode, and its AMLResponse, a Flask response, is sent as ours.

The servers get the real package and the Flask it imports from the reference's virtualenv (`make reference`, which
`make test` builds first), on their PYTHONPATH only: our own environment never has Flask.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scoring_runtime.app.lifecycle import load_user_script
from scoring_runtime.azureml import aml_request, register_azureml_aliases
from scoring_runtime.azureml.aml_response import AMLResponse
from scoring_runtime.azureml.wsgi_response import WerkzeugResponse, adopt_response, is_werkzeug_response
from scoring_runtime.config import load_settings
from scoring_runtime.contract import rawhttp
from scoring_runtime.contract.script import Mode, UserScript
from tests.conftest import ServerFactory
from tests.helpers import ROOT

REFERENCE_SITE = next(iter(sorted((ROOT / "benchmarks/.venv-ref/lib").glob("python3*/site-packages"))), None)
# What `from azureml_inference_server_http.api.aml_request import ...` imports: the package, Flask and Flask's own
# dependencies. Werkzeug comes with the Flask it was installed with; MarkupSafe and Click only where we lack them.
LINKED = ("azureml_inference_server_http", "flask", "werkzeug", "jinja2", "itsdangerous", "blinker")
LINKED_IF_MISSING = ("markupsafe", "click")
needs_reference = pytest.mark.skipif(
    REFERENCE_SITE is None, reason="the reference's virtualenv is not installed (make reference)"
)


def reference_path(root: Path) -> str:
    """A PYTHONPATH with the reference package and Flask, linked from the reference's virtualenv into `root`."""
    assert REFERENCE_SITE is not None
    root.mkdir()
    names = [*LINKED, *(name for name in LINKED_IF_MISSING if importlib.util.find_spec(name) is None)]
    for name in names:
        for found in [REFERENCE_SITE / name, *REFERENCE_SITE.glob(f"{name}-*.dist-info")]:
            (root / found.name).symlink_to(found)
    return os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))


@pytest.mark.slow
@needs_reference
def test_the_reference_packages_rawhttp_and_response(serve: ServerFactory, tmp_path: Path, workers: int) -> None:
    server = serve("ref_real_package.py", workers=workers, env={"PYTHONPATH": reference_path(tmp_path / "site")})
    assert "run() is decorated with @rawhttp" in server.log()

    report = server.post("/score", json={"a": 1})
    assert report.status_code == 200 and report.headers["content-type"] == "application/json"
    assert report.json() == {
        "method": "POST",
        "json": {"a": 1},
        "request": "scoring_runtime.azureml.aml_request",  # ours, with Flask's request API, as the reference passes
        "response": [
            "azureml_inference_server_http.api.aml_response.AMLResponse",  # the real one, not our alias
            "flask.wrappers.Response",
            "werkzeug.wrappers.response.Response",
            "werkzeug.sansio.response.Response",
            "builtins.object",
        ],
    }

    png = b"\x89PNG\r\n\x1a\n" + os.urandom(4096)
    image = server.post("/score?kind=image", content=png, headers={"Content-Type": "application/octet-stream"})
    assert (image.status_code, image.content) == (200, png)
    assert image.headers.get_list("content-type") == ["image/png"]  # the mimetype set after construction
    assert image.headers["content-length"] == str(len(png))
    assert image.headers.get_list("set-cookie") == ["session=abc; HttpOnly; Path=/", "theme=dark; Path=/; SameSite=Lax"]
    assert image.headers.get_list("x-tags") == ["a", "b"]  # split on commas by the reference's constructor
    assert image.headers["x-ms-run-function-failed"] == "False" and "x-ms-run-fn-exec-ms" in image.headers

    streamed = server.post("/score?kind=stream", content=b"")
    assert (streamed.status_code, streamed.text) == (200, "chunk1 chunk2")
    assert streamed.headers["content-type"] == "text/plain" and "content-length" not in streamed.headers

    failed = server.post("/score?kind=failed", content=b"")
    assert (failed.status_code, failed.text) == (503, "overloaded")
    assert failed.headers.get_list("x-ms-run-function-failed") == ["True"]  # as the reference marks a 5xx

    plain = server.post("/score?kind=flask", content=b"")
    assert (plain.status_code, plain.text) == (202, "plain flask")
    assert plain.headers["content-type"] == "text/plain; charset=utf-8"  # Werkzeug's mimetype adds the charset
    assert "x-ms-run-function-failed" not in plain.headers  # only AMLResponse's constructor adds it


@pytest.mark.slow
@needs_reference
def test_a_script_written_for_the_reference_behaves_the_same_with_it_installed(
    serve: ServerFactory, tmp_path: Path
) -> None:
    # ref_binary.py, served with our modules in test_reference_import_path.py and test_aml_response_api.py.
    server = serve("ref_binary.py", env={"PYTHONPATH": reference_path(tmp_path / "site")})
    echoed = server.post("/score", json={"a": 1})
    assert echoed.status_code == 200 and echoed.json() == {"method": "POST", "json": {"a": 1}}
    jpeg = b"\xff\xd8\xff\xe0\x00\x10JFIF" + os.urandom(4096)
    image = server.post("/score?jpeg=1", content=jpeg, headers={"Content-Type": "image/jpeg"})
    assert (image.status_code, image.content) == (200, jpeg)
    assert image.headers.get_list("content-type") == ["image/jpg"]
    changed = server.post("/score?changed=1", content=b"")
    assert (changed.status_code, changed.text) == (201, "a longer body than the first")
    assert changed.headers["content-length"] == str(len(changed.content))
    assert changed.headers["access-control-allow-origin"] == "http://www.example.com"
    assert changed.headers.get_list("x-added") == ["a", "b"] and changed.headers["x-count"] == "3"
    assert "x-built" not in changed.headers
    assert changed.headers["set-cookie"] == "session=abc; HttpOnly; Path=/"
    assert changed.headers["x-ms-run-function-failed"] == "False"
    streamed = server.post("/score?stream=1", content=b"")
    assert (streamed.text, streamed.headers["content-type"]) == ("chunk1 chunk2", "text/plain")
    assert "content-length" not in streamed.headers


# In process: the reference's marker, with a package written as the reference's is (a flag set by its rawhttp).


@pytest.fixture
def reference_like(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A package with the reference's name and its aml_request's marker, importable; our aliases withdrawn."""
    api = tmp_path / "site" / "azureml_inference_server_http" / "api"
    api.mkdir(parents=True)
    (api.parent / "__init__.py").write_text("")
    (api / "__init__.py").write_text("")
    (api / "aml_request.py").write_text(
        "_rawHttpRequested = False\n\n\ndef rawhttp(func):\n    global _rawHttpRequested\n"
        "    _rawHttpRequested = True\n    return func\n"
    )
    saved = {name: module for name, module in sys.modules.items() if name.startswith("azureml")}
    for name in saved:
        del sys.modules[name]
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    register_azureml_aliases()
    yield tmp_path
    for name in [name for name in sys.modules if name.startswith("azureml")]:
        del sys.modules[name]
    sys.modules.update(saved)


def load(path: Path) -> UserScript:
    return load_user_script(load_settings({"entry_script": str(path)}, environ={})[0])


def script(folder: Path, name: str, decorated: bool) -> Path:
    path = folder / name
    path.write_text(
        "from azureml_inference_server_http.api.aml_request import rawhttp\n\n\ndef init():\n    pass\n\n\n"
        + ("@rawhttp\n" if decorated else "")
        + "def run(request):\n    return request\n"
    )
    return path


def test_the_reference_packages_rawhttp_makes_run_raw_script_by_script(reference_like: Path) -> None:
    assert load(script(reference_like, "raw.py", decorated=True)).mode is Mode.RAW
    module = sys.modules[rawhttp.REFERENCE_MODULE]
    assert module is not aml_request and module.__file__ is not None and module.__file__.startswith(str(reference_like))
    # The flag stays set in the reference for the rest of the process; here each script is judged by its own use.
    assert load(script(reference_like, "plain.py", decorated=False)).mode is Mode.PLAIN
    assert load(script(reference_like, "raw_again.py", decorated=True)).mode is Mode.RAW


def test_our_alias_on_the_reference_path_has_no_flag_to_read() -> None:
    register_azureml_aliases()  # the reference is not installed where the tests run: the name is our module
    assert sys.modules[rawhttp.REFERENCE_MODULE] is aml_request
    before = rawhttp.uses()
    assert rawhttp.uses() == before and not hasattr(aml_request, rawhttp.REFERENCE_FLAG)


# In process: a Werkzeug response as ours, from a duck-typed stand-in and from Werkzeug's own Response.


class FakeWerkzeugResponse:
    """Only what the conversion may use: Werkzeug's WSGI entry point, and whether the body is streamed."""

    def __init__(self, body: list[bytes] | Iterator[bytes], status: str, headers: list[tuple[str, str]]) -> None:
        self.body, self.status, self.headers = body, status, headers
        self.is_streamed = not isinstance(body, list)
        self.closed = False
        self.environ: dict[str, Any] = {}

    def get_wsgi_response(self, environ: dict[str, Any]) -> tuple[Any, str, list[tuple[str, str]]]:
        self.environ = environ
        return ClosingBody(self.body, self), self.status, self.headers


class ClosingBody:
    def __init__(self, body: list[bytes] | Iterator[bytes], owner: FakeWerkzeugResponse) -> None:
        self.body, self.owner = iter(body), owner

    def __iter__(self) -> ClosingBody:
        return self

    def __next__(self) -> bytes:
        return next(self.body)

    def close(self) -> None:
        self.owner.closed = True


def test_a_whole_body_response_keeps_status_headers_and_body() -> None:
    headers = [
        ("Content-Type", "image/png"),
        ("Content-Length", "6"),
        ("Set-Cookie", "a=1; Path=/"),
        ("Set-Cookie", "b=2; HttpOnly; Path=/"),
        ("X-Ms-Run-Function-Failed", "False"),
    ]
    fake = FakeWerkzeugResponse([b"ab", b"cdef"], "299 FINE", headers)
    converted = adopt_response(fake)
    assert isinstance(converted, WerkzeugResponse) and isinstance(converted, AMLResponse)
    assert (converted.status_code, converted.status, converted.body) == (299, "299 FINE", b"abcdef")
    assert converted.raw_headers == [(name.lower().encode(), value.encode()) for name, value in headers]
    assert converted.stream is None and fake.closed  # read whole and closed, as a WSGI server does
    assert fake.environ["REQUEST_METHOD"] == "POST"
    # Then it is ours, Flask's API included.
    assert converted.mimetype == "image/png"
    assert converted.headers.getlist("Set-Cookie") == ["a=1; Path=/", "b=2; HttpOnly; Path=/"]


def test_a_streamed_response_stays_streamed() -> None:
    fake = FakeWerkzeugResponse((chunk for chunk in [b"one ", b"two"]), "200 OK", [("Content-Type", "text/plain")])
    converted = adopt_response(fake)
    assert converted.raw_headers == [(b"content-type", b"text/plain")] and converted.body == b""
    assert isinstance(converted.stream, ClosingBody) and not fake.closed  # closed by whoever sends it
    assert list(converted.stream) == [b"one ", b"two"]


def test_anything_else_is_left_as_it_is() -> None:
    class Anything:
        def __getattr__(self, name: str) -> object:
            return lambda *args: None

    ours = AMLResponse("x", 200)
    for result in ({"a": 1}, "text", None, ours, Anything()):
        assert not is_werkzeug_response(result) and adopt_response(result) is result


def test_werkzeugs_own_response() -> None:
    wrappers: Any = pytest.importorskip("werkzeug.wrappers")
    resp = wrappers.Response("héllo", status=201, headers={"X-Tags": "a"})
    resp.headers.add("X-Tags", "b")
    resp.mimetype = "text/plain"
    resp.set_cookie("session", "abc", httponly=True)
    resp.set_cookie("theme", "dark")
    converted = adopt_response(resp)
    assert (converted.status_code, converted.body) == (201, "héllo".encode())
    assert converted.raw_headers == [
        (b"x-tags", b"a"),
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", b"6"),
        (b"x-tags", b"b"),
        (b"set-cookie", b"session=abc; HttpOnly; Path=/"),
        (b"set-cookie", b"theme=dark; Path=/"),
    ]
    # A list body Werkzeug would send with the Content-Length it works out; a generator, streamed.
    listed = adopt_response(wrappers.Response([b"ab", "cd"], mimetype="application/json"))
    assert (listed.body, listed.headers["content-length"], listed.stream) == (b"abcd", "4", None)
    streamed = adopt_response(wrappers.Response(chunk for chunk in ["a", "b"]))
    assert "content-length" not in streamed.headers and list(streamed.stream) == [b"a", b"b"]
    json_body = json.dumps({"a": 1})
    assert adopt_response(wrappers.Response(json_body, mimetype="application/json")).get_json() == {"a": 1}
