"""The API page in a real browser against a real server: Debian's chromium (`make browser`), driven by playwright.

Open /docs, expand POST /score, "Try it out", "Execute", and see the prediction the server makes of the example: at
the root, under SERVICE_PATH_PREFIX, behind a proxy that strips a prefix of its own, and with /swagger.json behind a
key. The browser reaches nothing but 127.0.0.1 (every other request is refused and counted, so a CDN shows up), and
the page must log no console error, raise no script error and lose no request.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx2 as httpx
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Request, Route, sync_playwright

from tests.conftest import ServerFactory
from tests.helpers import ROOT, SAMPLES, Server

CHROMIUM = Path("/usr/bin/chromium")
# As root chromium needs --no-sandbox; the rest keep it from calling Google's services, which are unreachable here.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOT = ROOT / "docs" / "images" / "api-page.png"
DIABETES = SAMPLES / "diabetes"
EXAMPLE = {"data": [[0.04, 0.05, 0.06, 0.02, -0.04, -0.03, -0.04, 0.0, 0.02, -0.02]]}  # score.py's input_sample
KEY = "a-key-for-the-page"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make browser` installs Debian's chromium", pytrace=False)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@dataclass
class Watched:
    """A page whose network is 127.0.0.1 only, and what went wrong in it."""

    page: Page
    elsewhere: list[str] = field(default_factory=list)  # requests for any other host, refused
    errors: list[str] = field(default_factory=list)


def _watch(browser: Browser, proxy: tuple[str, str] | None = None) -> Watched:
    """`proxy`: (prefix, server URL): requests for 127.0.0.1 under `prefix` are forwarded with it stripped, as a
    reverse proxy in front of the server would; any other request for 127.0.0.1 is an error (it bypassed it)."""
    context = browser.new_context(viewport={"width": 1000, "height": 900})
    watched = Watched(context.new_page())

    def route(route: Route, request: Request) -> None:
        url = urlsplit(request.url)
        if url.hostname != "127.0.0.1":
            watched.elsewhere.append(request.url)
            route.abort("internetdisconnected")
        elif proxy is None:
            route.continue_()
        elif url.path.startswith(proxy[0] + "/"):
            upstream = proxy[1] + url.path.removeprefix(proxy[0]) + (f"?{url.query}" if url.query else "")
            route.fulfill(response=route.fetch(url=upstream))
        else:
            watched.errors.append(f"not through the proxy: {request.method} {request.url}")
            route.abort()

    def console(message: ConsoleMessage) -> None:
        if message.type == "error":
            watched.errors.append(f"console: {message.text}")

    context.route("**/*", route)
    watched.page.on("console", console)
    watched.page.on("pageerror", lambda error: watched.errors.append(f"page error: {error}"))
    watched.page.on("requestfailed", lambda failed: watched.errors.append(f"failed: {failed.url} {failed.failure}"))
    return watched


def _try_the_example(page: Page) -> tuple[str, str]:
    """Send POST /score's example from the page: the response body and the request URL the page shows."""
    operation = page.locator(".opblock-post").filter(has_text=re.compile(r"/score\b"))
    operation.locator(".opblock-summary").click()
    operation.get_by_role("button", name="Try it out").click()
    operation.get_by_role("button", name="Execute").click()
    live = operation.locator(".live-responses-table")
    live.locator(".response-col_description pre").first.wait_for()
    assert live.locator("tbody .response-col_status").first.inner_text().strip() == "200"
    return live.locator(".response-col_description pre").first.inner_text(), operation.locator(
        ".request-url pre"
    ).inner_text()


def _prediction(server: Server, path: str = "/score") -> str:
    answer = httpx.post(server.url + path, json=EXAMPLE, headers={"authorization": f"Bearer {KEY}"}, timeout=30)
    assert answer.status_code == 200, answer.text
    (value,) = answer.json()
    return repr(value)


def _diabetes(serve: ServerFactory, **env: str) -> Server:
    return serve(DIABETES / "score.py", "--model_dir", str(DIABETES / "model"), env=env)


def _screenshot(page: Page, path: Path) -> None:
    """From the top of the page to the end of the answer: what the README shows."""
    answer = page.locator(".live-responses-table").first.bounding_box()  # relative to the scrolled viewport
    assert answer is not None
    bottom = answer["y"] + answer["height"] + page.evaluate("window.scrollY") + 16
    page.screenshot(path=path, clip={"x": 0, "y": 0, "width": 1000, "height": bottom}, full_page=True)


@pytest.mark.slow
@pytest.mark.parametrize("prefix", ["", "/models/diabetes"])
def test_try_it_out_shows_the_prediction(serve: ServerFactory, browser: Browser, prefix: str, tmp_path: Path) -> None:
    server = _diabetes(serve, **({"SERVICE_PATH_PREFIX": prefix} if prefix else {}))
    watched = _watch(browser)
    with watched.page.expect_response(lambda response: "/swagger-ui-bundle.js" in response.url) as bundle:
        watched.page.goto(f"{server.url}{prefix}/docs")
    assert bundle.value.headers["content-encoding"] == "gzip"
    body, request_url = _try_the_example(watched.page)
    assert _prediction(server) in body
    assert request_url == f"{server.url}{prefix}/score"
    assert watched.page.title() == "ML service - API"
    assert (watched.elsewhere, watched.errors) == ([], [])
    if not prefix:
        # Kept in docs/images for the README; written again only when asked, so that a test run leaves the tree alone.
        update = not SCREENSHOT.exists() or os.environ.get("UPDATE_API_PAGE_SCREENSHOT") == "1"
        _screenshot(watched.page, SCREENSHOT if update else tmp_path / "api-page.png")
    watched.page.context.close()
    # The page is not the reference's: it is not access-logged, as /metrics is not.
    log = server.wait_for_log("POST /score 200")
    assert "GET /docs" not in log and "POST /score 200" in log


@pytest.mark.slow
def test_behind_a_proxy_that_strips_its_prefix(serve: ServerFactory, browser: Browser) -> None:
    server = _diabetes(serve, SERVICE_PATH_PREFIX="/models/diabetes")
    # The browser sees /gateway/...; the server, what follows. Requests that bypass /gateway fail the test.
    watched = _watch(browser, proxy=("/gateway", server.url))
    watched.page.goto(f"{server.url}/gateway/models/diabetes/docs")
    body, request_url = _try_the_example(watched.page)
    assert _prediction(server) in body
    assert request_url == f"{server.url}/gateway/models/diabetes/score"
    watched.page.goto(f"{server.url}/gateway/docs")
    body, request_url = _try_the_example(watched.page)
    assert request_url == f"{server.url}/gateway/score"
    assert (watched.elsewhere, watched.errors) == ([], [])
    watched.page.context.close()


@pytest.mark.slow
def test_a_protected_document_asks_for_the_key(serve: ServerFactory, browser: Browser) -> None:
    server = _diabetes(serve, SCORING_AUTH_KEYS=KEY, SCORING_AUTH_SWAGGER="true")
    watched = _watch(browser)
    page = watched.page
    page.goto(f"{server.url}/docs")
    problem = page.locator("#problem")
    problem.filter(has_text="requires a key or token").wait_for()
    page.locator("#token").fill("not-the-key")
    page.get_by_role("button", name="Load the API").click()
    problem.filter(has_text="was not accepted").wait_for()
    page.locator("#token").fill(f"Bearer {KEY}")
    page.get_by_role("button", name="Load the API").click()
    body, _ = _try_the_example(page)  # /score requires the key too: the page sends it
    assert _prediction(server) in body
    assert page.locator("#token-form").is_hidden() and problem.is_hidden()
    # The two refusals of /swagger.json are the only errors the browser reports.
    assert watched.elsewhere == []
    assert len(watched.errors) == 2 and all("401" in error for error in watched.errors), watched.errors
    page.context.close()
