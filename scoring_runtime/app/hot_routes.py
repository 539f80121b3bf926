"""The routes that carry the traffic, dispatched by one dictionary lookup ahead of Starlette's router.

Starlette's stack (server-error and exception middleware, the router's linear match, the endpoint wrapper) costs
several function layers and a closure per request. `/score` and `/` are looked up by (method, path) here and
everything else (other methods, 404s, 405s, the probes) goes on to Starlette as before, so behaviour does not change:
an HTTPError raised by the endpoint is turned into its response by the same function Starlette's handler uses.
Without it the echo benchmark took 1.18x the server CPU per request at c=8 and 1.24x at c=64 (benchmarks/ab.py with
benchmarks/variants/no-hot-routes.patch, docs/architecture.md).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from scoring_runtime.errors import HTTPError

Endpoint = Callable[[Request], Awaitable[Response]]


class HotRoutes:
    def __init__(
        self, routes: Mapping[tuple[str, str], Endpoint], on_error: Callable[[HTTPError, str], Response], app: ASGIApp
    ) -> None:
        self.routes = dict(routes)
        self.on_error = on_error
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = self.routes.get((scope.get("method", ""), scope["path"])) if scope["type"] == "http" else None
        if endpoint is None:
            await self.app(scope, receive, send)
            return
        try:
            response = await endpoint(Request(scope, receive))
        except HTTPError as exc:
            response = self.on_error(exc, scope["path"])
        await response(scope, receive, send)
