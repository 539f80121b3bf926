"""Request telemetry as pure ASGI middleware, outside RequestContext so that it sees the response as the client gets
it, id headers included. Only inserted when telemetry is on (observability/telemetry.py): otherwise the request path
has no trace of it.
"""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from scoring_runtime.observability.telemetry import RESPONSE_VALUE_BYTES, Telemetry, client_request_id

_HOST = b"host"
_REQUEST_ID = b"x-request-id"
_LEGACY_ID = b"x-ms-request-id"
_CLIENT_ID = b"x-ms-client-request-id"
_DEFAULT_PORTS = {("http", 80), ("https", 443)}


class RequestTelemetry:
    """One SERVER span for each request to `paths` (the reference's: /score and /swagger.json, not `GET /`)."""

    def __init__(self, app: ASGIApp, telemetry: Telemetry, paths: frozenset[str]) -> None:
        self.app = app
        self.telemetry = telemetry
        self.paths = paths
        # The reference's default: the body goes into the telemetry, so it is kept (up to what is sent) as it goes.
        self.capture = telemetry.plan.log_response

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        pipelines = self.telemetry.pipelines
        if pipelines is None or scope["type"] != "http" or scope["path"] not in self.paths:
            await self.app(scope, receive, send)
            return
        start_ns = time.time_ns()
        status = 0
        response_headers: list[tuple[bytes, bytes]] = []
        body: list[bytes] | None = [] if self.capture else None
        kept = 0
        # Log records emitted while serving carry the client's id; the request id comes from RequestContext's.
        client = legacy = ""
        for name, value in scope["headers"]:
            if name == _CLIENT_ID:
                client = client or value.decode("latin-1")
            elif name == _LEGACY_ID:
                legacy = legacy or value.decode("latin-1")

        async def send_observed(message: Message) -> None:
            nonlocal status, response_headers, kept
            if message["type"] == "http.response.start":
                status = message["status"]
                response_headers = message.get("headers", [])
            elif body is not None and kept < RESPONSE_VALUE_BYTES:
                chunk = message.get("body", b"")
                body.append(chunk)
                kept += len(chunk)
            await send(message)

        token = client_request_id.set(client or legacy)
        error: BaseException | None = None
        try:
            await self.app(scope, receive, send_observed)
        except BaseException as exc:
            error = exc
            raise
        finally:
            client_request_id.reset(token)
            end_ns = time.time_ns()
            ids = ("", "")
            for name, value in response_headers:
                if name == _REQUEST_ID:
                    ids = (value.decode("latin-1"), ids[1])
                elif name == _CLIENT_ID:
                    ids = (ids[0], value.decode("latin-1"))
            try:
                pipelines.request(
                    scope["method"],
                    scope["path"],
                    _url(scope),
                    status or 500,
                    ids,
                    (start_ns, end_ns),
                    None if body is None else b"".join(body)[:RESPONSE_VALUE_BYTES],
                    error,
                )
            except Exception:
                self.telemetry.failed()


def _url(scope: Scope) -> str:
    """The URL the client asked for, as the reference's `request.url`: from the Host header, else the server."""
    scheme: str = scope.get("scheme", "http")
    host = next((value.decode("latin-1") for name, value in scope["headers"] if name == _HOST), None)
    if host is None:
        server = scope.get("server")
        if server is None:
            host = "localhost"
        else:
            host = (
                server[0] if (scheme, server[1]) in _DEFAULT_PORTS or server[1] is None else f"{server[0]}:{server[1]}"
            )
    query: bytes = scope.get("query_string", b"")
    target = scope.get("root_path", "") + scope["path"]
    return f"{scheme}://{host}{target}?{query.decode('latin-1')}" if query else f"{scheme}://{host}{target}"
