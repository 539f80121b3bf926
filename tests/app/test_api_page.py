"""The API page at /docs, in-process: relative links, its files and their heads, the setting, authentication.

tests/app/test_api_page_browser.py drives it in a real browser against a real server.
"""

from __future__ import annotations

import gzip
import hashlib
import re
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from scoring_runtime import create_app
from scoring_runtime.app.api_page import ASSETS, CONTENT_SECURITY_POLICY, STATIC, VENDORED, ApiPage
from scoring_runtime.config import load_settings
from tests.helpers import SCRIPTS

NOT_FOUND = b'{"message": "The requested URL was not found on the server.'
IDENTITY = {"accept-encoding": "identity"}


def client_for(script: str = "swagger_numpy.py", **settings: Any) -> TestClient:
    return TestClient(create_app(entry_script=SCRIPTS / script, **settings))


@pytest.fixture
def prefixed() -> Iterator[TestClient]:
    # Per test: the app exports its settings to os.environ, which the autouse fixture restores after each test.
    with client_for(service_path_prefix="/models/x") as client:
        client.headers.update(IDENTITY)
        yield client


def _links(page: str) -> list[str]:
    return re.findall(r'(?:href|src|data-spec)="([^"]*)"', page)


@pytest.mark.parametrize("root", ["", "/models/x"])
def test_the_page_links_everything_relative_to_itself(prefixed: TestClient, root: str) -> None:
    response = prefixed.get(f"{root}/docs")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    links = _links(response.text)
    # Relative to the page, so that the same bytes work at /docs, /models/x/docs and behind a proxy's prefix.
    assert links and all(not re.match(r"^(/|[a-z]+:)", link) for link in links), links
    assert "swagger.json?version=3" in links
    assert 'data-path-prefix="/models/x"' in response.text
    # Each linked file is served where the browser resolves it.
    for link in links:
        if link.startswith("docs/"):
            assert prefixed.get(f"{root}/{link}").status_code == 200, link
    assert prefixed.get(f"{root}/swagger.json?version=3").json()["openapi"] == "3.0.3"


def test_the_page_has_no_inline_script_and_a_strict_policy(prefixed: TestClient) -> None:
    response = prefixed.get("/docs")
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    policy = dict(part.strip().split(" ", 1) for part in CONTENT_SECURITY_POLICY.split(";"))
    assert policy["script-src"] == "'self'" and policy["default-src"] == "'none'" and policy["connect-src"] == "'self'"
    assert "unsafe" not in CONTENT_SECURITY_POLICY
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-cache"
    assert re.findall(r"<script\b[^>]*>", response.text) == [
        f'<script src="{link}">' for link in _links(response.text) if link.endswith(".js") or ".js?" in link
    ]
    assert " style=" not in response.text and "<style" not in response.text


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("swagger-ui-bundle.js", "text/javascript; charset=utf-8"),
        ("api-page.js", "text/javascript; charset=utf-8"),
        ("swagger-ui.css", "text/css; charset=utf-8"),
        ("favicon-32x32.png", "image/png"),
        ("LICENSE", "text/plain; charset=utf-8"),
    ],
)
def test_files_are_served_with_their_type_validators_and_caching(
    prefixed: TestClient, name: str, content_type: str
) -> None:
    path, _ = ASSETS[name]
    linked = next(link for link in _links(prefixed.get("/models/x/docs").text) if link.startswith(f"docs/{name}?"))
    response = prefixed.get(f"/models/x/{linked}")
    assert response.status_code == 200
    assert response.content == path.read_bytes()
    assert response.headers["content-type"] == content_type
    assert response.headers["x-content-type-options"] == "nosniff"
    # The page links each file by its digest: that URL never changes content. Any other is revalidated.
    assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
    etag = response.headers["etag"]
    assert etag == f'"{hashlib.sha256(path.read_bytes()).hexdigest()[:32]}"'
    plain = prefixed.get(f"/docs/{name}")
    assert (plain.content, plain.headers["etag"], plain.headers["cache-control"]) == (
        response.content,
        etag,
        "no-cache",
    )
    for validator in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        again = prefixed.get(f"/docs/{name}", headers={"if-none-match": validator})
        assert (again.status_code, again.content, again.headers["etag"]) == (304, b"", etag), validator
    assert prefixed.get(f"/docs/{name}", headers={"if-none-match": '"other"'}).status_code == 200
    head = prefixed.head(f"/docs/{name}")
    assert (head.status_code, head.content, head.headers["content-length"]) == (200, b"", str(len(response.content)))
    options = prefixed.options(f"/docs/{name}")
    assert (options.status_code, options.headers["allow"]) == (200, "GET, HEAD, OPTIONS")
    assert prefixed.post(f"/docs/{name}").status_code == 405


@pytest.mark.parametrize("accepted", ["gzip", "br, gzip;q=0.5", "*", "GZIP, deflate"])
def test_text_files_are_sent_compressed_to_clients_that_accept_it(prefixed: TestClient, accepted: str) -> None:
    path, _ = ASSETS["swagger-ui-bundle.js"]
    identity = prefixed.get("/docs/swagger-ui-bundle.js")
    stream = prefixed.stream("GET", "/docs/swagger-ui-bundle.js", headers={"accept-encoding": accepted})
    with stream as response:
        encoded = b"".join(response.iter_raw())
    assert response.headers["content-encoding"] == "gzip"
    assert response.headers["vary"] == identity.headers["vary"] == "accept-encoding"
    assert gzip.decompress(encoded) == path.read_bytes() and len(encoded) < len(path.read_bytes()) / 3
    assert int(response.headers["content-length"]) == len(encoded)
    # Another representation, another strong validator; each is revalidated as itself.
    etag = response.headers["etag"]
    assert etag != identity.headers["etag"] and etag.endswith('-gzip"')
    again = prefixed.get("/docs/swagger-ui-bundle.js", headers={"accept-encoding": accepted, "if-none-match": etag})
    assert (again.status_code, again.headers["content-encoding"]) == (304, "gzip")
    assert prefixed.get("/docs/swagger-ui-bundle.js", headers={"if-none-match": etag}).status_code == 200


@pytest.mark.parametrize("accepted", ["identity", "gzip;q=0", "gzip; q=0.00, deflate", "deflate, br"])
def test_other_clients_and_small_files_get_the_file_as_it_is(prefixed: TestClient, accepted: str) -> None:
    response = prefixed.get("/docs/swagger-ui.css", headers={"accept-encoding": accepted})
    assert "content-encoding" not in response.headers
    for small in ("/docs/NOTICE", "/docs/favicon-32x32.png", "/docs"):
        response = prefixed.get(small, headers={"accept-encoding": "gzip"})
        assert "content-encoding" not in response.headers and "vary" not in response.headers, small


def test_the_page_is_revalidated_by_its_etag(prefixed: TestClient) -> None:
    page = prefixed.get("/docs")
    again = prefixed.get("/docs", headers={"if-none-match": page.headers["etag"]})
    assert (again.status_code, again.content, again.headers["cache-control"]) == (304, b"", "no-cache")
    assert (prefixed.head("/docs").status_code, prefixed.options("/docs").headers["allow"]) == (
        200,
        "GET, HEAD, OPTIONS",
    )
    for path in ("/docs/", "/docs/nope.js", "/docs/VENDORED", "/models/docs", "/Docs"):
        response = prefixed.get(path)
        assert response.status_code == 404 and response.content.startswith(NOT_FOUND), path


def test_the_vendored_files_are_those_recorded() -> None:
    record = (VENDORED / "VENDORED").read_text().splitlines()
    assert re.fullmatch(r"swagger-ui-dist 5\.\d+\.\d+ \(npm, Apache-2\.0\): make vendor-swagger-ui .*", record[0])
    digests = {name: digest for digest, name in (line.split() for line in record[2:])}
    assert set(digests) == {path.name for path in VENDORED.iterdir()} - {"VENDORED"}
    for name, digest in digests.items():
        assert hashlib.sha256((VENDORED / name).read_bytes()).hexdigest() == digest, name
    assert {"LICENSE", "NOTICE", "swagger-ui-bundle.js.LICENSE.txt"} <= set(digests)
    assert "Apache License" in (VENDORED / "LICENSE").read_text()
    assert {path.parent for path, _ in ASSETS.values()} == {VENDORED, STATIC}


@pytest.mark.parametrize(
    ("versions", "spec"),
    [
        (("2", "3", "3.1"), "swagger.json?version=3"),
        (("3", "3.1"), "swagger.json?version=3"),
        (("2", "3.1"), "swagger.json?version=3.1"),
        (("2",), "swagger.json?version=2"),
        ((), "swagger.json"),
    ],
)
def test_the_page_shows_the_best_document_the_script_serves(versions: tuple[str, ...], spec: str) -> None:
    page = ApiPage('/a"b')
    page.publish(versions)
    html = page._assets[""].body.decode()
    assert f'data-spec="{spec}"' in html
    assert 'data-path-prefix="/a&quot;b"' in html


def test_a_mixed_script_without_swagger_2_gets_its_3_document() -> None:
    with client_for("swagger_mixed.py") as client:
        assert 'data-spec="swagger.json?version=3"' in client.get("/docs").text
        assert client.get("/swagger.json?version=3").status_code == 200


def test_the_setting_turns_the_page_off() -> None:
    settings, _ = load_settings({}, environ={"SCORING_API_PAGE": "false"})
    assert settings.api_page is False
    with client_for(api_page=False, service_path_prefix="/p") as client:
        for path in ("/docs", "/p/docs", "/docs/swagger-ui-bundle.js", "/docs/api-page.js"):
            response = client.get(path)
            assert response.status_code == 404 and response.content.startswith(NOT_FOUND), path
        assert client.get("/swagger.json").status_code == 200
        assert 'route="/docs"' not in client.get("/metrics").text


def test_the_page_is_counted_under_one_route_label(prefixed: TestClient) -> None:
    prefixed.get("/models/x/docs/swagger-ui.css")
    metrics = prefixed.get("/metrics").text
    assert re.search(r'scoring_requests_total\{route="/docs",status_class="2xx"\} [1-9]', metrics)
    assert "/models/x/docs" not in metrics and "swagger-ui.css" not in metrics


@pytest.mark.parametrize("protect_swagger", [True, False])
def test_authentication_guards_the_document_and_score_not_the_page(protect_swagger: bool) -> None:
    bearer = {"authorization": "Bearer key-1"}
    with client_for("swagger_numpy.py", auth_keys="key-1", auth_swagger=protect_swagger) as client:
        # A browser cannot send a bearer header when it navigates; the page and its files hold nothing of the service.
        for path in ("/docs", "/docs/api-page.js", "/docs/swagger-ui-bundle.js"):
            assert client.get(path).status_code == 200, path
        assert client.get("/swagger.json?version=3").status_code == (401 if protect_swagger else 200)
        assert client.get("/swagger.json?version=3", headers=bearer).status_code == 200
        assert client.post("/score", json={"data": [1] * 10}).status_code == 401
        assert client.post("/score", json={"data": [1] * 10}, headers=bearer).json() == [1] * 10


def test_before_start_up_the_page_is_not_served_half_built() -> None:
    client = client_for()  # not entered: no lifespan, so no script and no documents
    assert client.get("/docs").status_code == 500
    assert client.get("/docs/swagger-ui.css").status_code == 200
