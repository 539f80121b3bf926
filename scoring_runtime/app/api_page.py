"""The API page, GET /docs: Swagger UI over this service's own /swagger.json, where "try it out" calls /score.

Everything the page loads comes from this server (swagger-ui-dist is vendored in static/swagger-ui/, its version and
digests in VENDORED): a page that needs a CDN is blank where the service runs offline. Every URL in the page is
relative to it (`swagger.json`, `docs/swagger-ui.css`), so that it works at /docs, under SERVICE_PATH_PREFIX and
behind a proxy that adds or strips a prefix; static/api-page.js sends Swagger UI's requests to the page's own folder
for the same reason. Files are read and their headers built once (a compressed copy once, when first asked for); a
request is a dictionary lookup and prebuilt bytes. The page holds nothing about the service: the browser fetches
the document from /swagger.json, under that route's authentication.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import html
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from starlette.types import Receive, Scope, Send

from scoring_runtime.app.responses import options_response
from scoring_runtime.errors import InternalError

STATIC = Path(__file__).resolve().with_name("static")
VENDORED = STATIC / "swagger-ui"
PAGE_PATH = "/docs"
_JS, _TEXT = "text/javascript; charset=utf-8", "text/plain; charset=utf-8"
# Served under docs/: name → (file, content type). The licences are served too, since the bundle names its own.
ASSETS = {
    "swagger-ui-bundle.js": (VENDORED / "swagger-ui-bundle.js", _JS),
    "swagger-ui.css": (VENDORED / "swagger-ui.css", "text/css; charset=utf-8"),
    "favicon-32x32.png": (VENDORED / "favicon-32x32.png", "image/png"),
    "api-page.js": (STATIC / "api-page.js", _JS),
    "LICENSE": (VENDORED / "LICENSE", _TEXT),
    "NOTICE": (VENDORED / "NOTICE", _TEXT),
    "swagger-ui-bundle.js.LICENSE.txt": (VENDORED / "swagger-ui-bundle.js.LICENSE.txt", _TEXT),
}
# Swagger UI renders OpenAPI 3.0 best; a script whose schemas have no 3.0 form is shown in 3.1, then in 2.
PREFERRED_VERSIONS = ("3", "3.1", "2")
# No inline script or style, nothing from another origin: Swagger UI's icons are data: URIs in its CSS.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_IMMUTABLE = b"public, max-age=31536000, immutable"
_COMMON = ((b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer"))
# Text files over this size are also sent gzip-compressed to clients that accept it (the bundle: 1.7 MB, 0.46 MB so).
# Each is compressed once per process, on a thread, when first asked for: not at start-up (65 ms for the bundle, in
# every worker, for a page few open), and never on the event loop.
_GZIP_OVER = 1024
_VARY = (b"vary", b"accept-encoding")
_GZIPPED: dict[str, Asset] = {}

RawHeaders = list[tuple[bytes, bytes]]


@dataclass(frozen=True)
class Asset:
    body: bytes
    etag: bytes  # strong: the content's digest
    version: bytes  # the query string the page links it with
    # The response heads, by whether the request named `version`: a file so linked never changes (the page links
    # the next version under another URL); any other request revalidates. The page always revalidates.
    ok: tuple[RawHeaders, RawHeaders]
    not_modified: tuple[RawHeaders, RawHeaders]
    content_type: str
    compressible: bool


def _asset(
    body: bytes, content_type: str, extra: RawHeaders | None = None, page: bool = False, of: Asset | None = None
) -> Asset:
    """`of`: the file `body` is the gzip encoding of; it keeps that file's version, and an ETag of its own."""
    digest = hashlib.sha256(body if of is None else of.body).hexdigest()
    etag = f'"{digest[:32]}"'.encode() if of is None else of.etag[:-1] + b'-gzip"'
    compressible = of is None and not page and content_type.startswith("text/") and len(body) > _GZIP_OVER
    varying = [_VARY] if compressible or of is not None else []
    common = [(b"etag", etag), *_COMMON, *varying, *(extra or [])]
    revalidated = [*common, (b"cache-control", b"no-cache")]
    immutable = revalidated if page else [*common, (b"cache-control", _IMMUTABLE)]
    entity = [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())]
    ok = ([*entity, *revalidated], [*entity, *immutable])
    version = f"v={digest[:16]}".encode()
    return Asset(body, etag, version, ok, (revalidated, immutable), content_type, compressible)


def _gzipped(asset: Asset) -> Asset:
    encoded = gzip.compress(asset.body, compresslevel=6, mtime=0)
    return _asset(encoded, asset.content_type, [(b"content-encoding", b"gzip")], of=asset)


@cache
def _files() -> dict[str, Asset]:
    """The files, read once per process (the bundle is 1.7 MB)."""
    return {name: _asset(path.read_bytes(), media) for name, (path, media) in ASSETS.items()}


def vendored_version() -> str:
    return (VENDORED / "VENDORED").read_text().split()[1]


def page_html(spec: str, path_prefix: str, files: dict[str, Asset]) -> bytes:
    def link(name: str) -> str:
        return html.escape(f"docs/{name}?{files[name].version.decode()}")

    version = html.escape(vendored_version())
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>API</title>
<link rel="icon" type="image/png" href="{link("favicon-32x32.png")}">
<link rel="stylesheet" href="{link("swagger-ui.css")}">
</head>
<body>
<div class="swagger-ui"><div class="wrapper">
<form id="token-form" hidden>
<p><label for="token">Key or token for this service:</label>
<input id="token" type="password" autocomplete="off" spellcheck="false">
<button class="btn authorize" type="submit">Load the API</button></p>
</form>
<p id="problem" class="errors-wrapper" role="alert" hidden></p>
</div></div>
<div id="swagger-ui" data-spec="{html.escape(spec)}" data-path-prefix="{html.escape(path_prefix)}"></div>
<div class="swagger-ui"><div class="wrapper"><p><small>Swagger UI {version}:
<a href="{link("LICENSE")}">licence</a>, <a href="{link("NOTICE")}">notice</a>,
<a href="{link("swagger-ui-bundle.js.LICENSE.txt")}">third-party licences</a>.</small></p></div></div>
<script src="{link("swagger-ui-bundle.js")}"></script>
<script src="{link("api-page.js")}"></script>
</body>
</html>
""".encode()


class ApiPage:
    """The page and its files; the page itself once `publish` has run."""

    def __init__(self, path_prefix: str) -> None:
        self._path_prefix = path_prefix
        self._assets: dict[str, Asset] = dict(_files())
        self._endpoints = {name: _Endpoint(self, name) for name in ("", *ASSETS)}

    def paths(self, prefix: str) -> dict[str, _Endpoint]:
        """The page's path under `prefix` (`/docs`), and its files' (`/docs/swagger-ui.css`), to their endpoints."""
        page = f"{prefix}{PAGE_PATH}"
        return {f"{page}/{name}" if name else page: endpoint for name, endpoint in self._endpoints.items()}

    def publish(self, versions: tuple[str, ...]) -> None:
        """Build the page for the documents this script serves (`Swaggers.versions`)."""
        version = next((v for v in PREFERRED_VERSIONS if v in versions), None)
        spec = f"swagger.json?version={version}" if version is not None else "swagger.json"
        body = page_html(spec, self._path_prefix, self._assets)
        # Revalidated every time: it names the files' versions, which change with an upgrade.
        csp = [(b"content-security-policy", CONTENT_SECURITY_POLICY.encode())]
        self._assets[""] = _asset(body, "text/html; charset=utf-8", csp, page=True)

    async def serve(self, name: str, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope["method"]
        if method == "OPTIONS":
            await options_response("GET, HEAD, OPTIONS")(scope, receive, send)
            return
        asset = self._assets.get(name)
        if asset is None:  # the page before the lifespan ran
            raise InternalError()
        if asset.compressible and _accepts_gzip(scope):
            compressed = _GZIPPED.get(name)
            if compressed is None:
                compressed = _GZIPPED[name] = await asyncio.to_thread(_gzipped, asset)
            asset = compressed
        versioned = scope["query_string"] == asset.version
        if _matches(scope, asset.etag):
            await send({"type": "http.response.start", "status": 304, "headers": asset.not_modified[versioned]})
            await send({"type": "http.response.body", "body": b""})
            return
        await send({"type": "http.response.start", "status": 200, "headers": asset.ok[versioned]})
        await send({"type": "http.response.body", "body": b"" if method == "HEAD" else asset.body})


@dataclass(frozen=True)
class _Endpoint:
    """One path's ASGI app: an object, since Starlette takes a function for a request handler."""

    page: ApiPage
    name: str

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.page.serve(self.name, scope, receive, send)


def _accepts_gzip(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"accept-encoding":
            for coding in value.lower().split(b","):
                token, _, parameters = coding.partition(b";")
                if token.strip() in (b"gzip", b"*"):
                    quality = parameters.replace(b" ", b"").removeprefix(b"q=")
                    return not quality or quality.strip(b"0.") != b""
    return False


def _matches(scope: Scope, etag: bytes) -> bool:
    for name, value in scope["headers"]:
        if name == b"if-none-match":
            tags = [tag.strip().removeprefix(b"W/") for tag in value.split(b",")]
            return etag in tags or b"*" in tags
    return False
