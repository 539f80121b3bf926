"""CORS for the server's routes (AML_CORS_ORIGINS), as pure ASGI middleware.

The reference's flask-cors behaviour, with the differences recorded in docs/compatibility.md: a request without an
`Origin` gets no CORS headers; `Vary: Origin` is always sent; preflights are answered here for every script mode
(a `@rawhttp` run() is not called for them); the response headers scripts most need are exposed to browsers.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

ALLOWED_METHODS = frozenset({"GET", "POST"})
EXPOSED_HEADERS = (
    b"x-request-id, x-ms-request-id, x-ms-client-request-id, x-ms-run-function-failed, x-ms-run-fn-exec-ms"
)
PREFLIGHT_MAX_AGE = b"600"
_ALLOW_ORIGIN = b"access-control-allow-origin"
_VARY = b"vary"
_PARAMETER = re.compile(r"\\\{[^/]+?\\\}")  # `{model}` in a route's path, as re.escape writes it


class Cors:
    def __init__(self, app: ASGIApp, origins: tuple[str, ...], paths: Iterable[str]) -> None:
        """`paths` are the routes' as declared: with parameters (`/v2/models/{model}/infer`), each stands for every
        path it routes."""
        self.app = app
        self.any_origin = "*" in origins
        self.origins = frozenset(origin.lower() for origin in origins)
        paths = frozenset(paths)
        self.paths = frozenset(path for path in paths if "{" not in path)
        self.patterns = tuple(_pattern(path) for path in sorted(paths - self.paths))

    def allows(self, origin: str) -> bool:
        return self.any_origin or origin.lower() in self.origins

    def covers(self, path: str) -> bool:
        return path in self.paths or any(pattern.fullmatch(path) for pattern in self.patterns)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.covers(scope["path"]):
            await self.app(scope, receive, send)
            return
        origin = None
        requested_method = None
        requested_headers = None
        for name, value in scope["headers"]:
            if name == b"origin":
                origin = value.decode("latin-1")
            elif name == b"access-control-request-method":
                requested_method = value.decode("latin-1")
            elif name == b"access-control-request-headers":
                requested_headers = value.decode("latin-1")
        allowed = origin is not None and self.allows(origin)
        if scope["method"] == "OPTIONS" and origin is not None and requested_method is not None:
            await self._preflight(send, origin if allowed else None, requested_method, requested_headers)
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                # CORS headers run() set itself are its decision: leave that response alone.
                if not any(name.lower() == _ALLOW_ORIGIN for name, _ in headers):
                    _add_vary(headers)
                    if allowed and origin is not None:
                        headers.append((_ALLOW_ORIGIN, origin.encode("latin-1")))
                        headers.append((b"access-control-expose-headers", EXPOSED_HEADERS))
                    message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_cors)

    async def _preflight(self, send: Send, origin: str | None, method: str, requested_headers: str | None) -> None:
        headers = [
            (b"content-type", b"text/html; charset=utf-8"),
            (b"content-length", b"0"),
            (b"x-ms-run-function-failed", b"False"),
            (_VARY, b"Origin"),
        ]
        if origin is not None:
            headers.append((_ALLOW_ORIGIN, origin.encode("latin-1")))
            # A method that is not allowed gets no Allow-Methods: the browser then refuses the actual request.
            if method.upper() in ALLOWED_METHODS:
                headers.append((b"access-control-allow-methods", b"GET, POST"))
                if requested_headers:
                    names = sorted({h.strip() for h in requested_headers.split(",") if h.strip()})
                    headers.append((b"access-control-allow-headers", ", ".join(names).encode("latin-1")))
                headers.append((b"access-control-max-age", PREFLIGHT_MAX_AGE))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b""})


def _pattern(path: str) -> re.Pattern[str]:
    """A route's path with each parameter matching one path segment, as Starlette's default `str` parameter does."""
    return re.compile(_PARAMETER.sub("[^/]+", re.escape(path)))


def _add_vary(headers: list[tuple[bytes, bytes]]) -> None:
    for index, (name, value) in enumerate(headers):
        if name.lower() == _VARY:
            if b"origin" not in value.lower() and value.strip() != b"*":
                headers[index] = (name, value + b", Origin")
            return
    headers.append((_VARY, b"Origin"))
