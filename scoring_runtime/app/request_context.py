"""Per-request identity and bookkeeping, as pure ASGI middleware: request ids, echoed headers, access log, metrics
and, when it is on, request telemetry.

Request ids follow the reference's rules exactly, 431 answers included, with two differences recorded in
docs/compatibility.md: the liveness probe `GET /` never answers 431, and every response (404 and 405 included)
carries the id headers.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Mapping
from typing import NamedTuple

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from scoring_runtime.observability.access_log import AccessLog
from scoring_runtime.observability.log import access_logger, logger, request_id
from scoring_runtime.observability.metrics import Metrics
from scoring_runtime.observability.request_export import RequestRecord
from scoring_runtime.observability.telemetry import Telemetry, request_headers
from scoring_runtime.observability.telemetry_values import RESPONSE_VALUE_BYTES

MAX_ID_LENGTH = 100
_random_bits = random.getrandbits
# The version (4) and variant (RFC 4122) bits of a UUID: bits 76-79 and 62-63.
_VERSION_MASK = ~((0xF << 76) | (0x3 << 62))
_VERSION_4 = (0x4 << 76) | (0x2 << 62)
_REQUEST_ID = b"x-request-id"
_LEGACY_ID = b"x-ms-request-id"
_CLIENT_ID = b"x-ms-client-request-id"
_TRACE_ID = b"traceid"
_SERVER_VERSION = b"x-ms-server-version"
_ID_HEADERS = frozenset({_REQUEST_ID, _LEGACY_ID, _CLIENT_ID, _TRACE_ID})
_SET_BY_SERVER = _ID_HEADERS | {_SERVER_VERSION}
# Where the reference checks the id headers (see RequestContext): the views of /score and /swagger.json, HEAD being
# routed wherever GET is, and OPTIONS to /swagger.json answered by Flask after its hooks.
ID_CHECKED: Mapping[str, frozenset[str]] = {
    "/score": frozenset({"GET", "HEAD", "POST", "OPTIONS"}),
    "/swagger.json": frozenset({"GET", "HEAD", "OPTIONS"}),
}
_LEGACY_WARNING = (
    "x-ms-request-id header has been deprecated and will be removed from future versions of the server. "
    "Please use x-ms-client-request-id."
)


class RequestIds(NamedTuple):
    # A tuple rather than a frozen dataclass: one is made per request, and a frozen dataclass's __init__ is slow.
    request_id: str
    legacy_id: str
    client_id: str
    trace_id: str | None
    # The message of the 431 answer, when an id is too long.
    rejection: str | None = None

    def response_headers(self) -> list[tuple[bytes, bytes]]:
        headers = []
        request_id = self.request_id.encode("latin-1")
        if request_id:
            headers.append((_REQUEST_ID, request_id))
        if self.rejection is not None:
            return headers
        if self.legacy_id:
            legacy = request_id if self.legacy_id is self.request_id else self.legacy_id.encode("latin-1")
            headers.append((_LEGACY_ID, legacy))
        if self.client_id:
            headers.append((_CLIENT_ID, self.client_id.encode("latin-1")))
        if self.trace_id is not None:
            headers.append((_TRACE_ID, self.trace_id.encode("latin-1")))
        return headers


def new_request_id() -> str:
    """A random UUID (version 4) as text, like str(uuid.uuid4()) but from `random`, without a system call.

    An id needs to be unique, not secret. `random` is reseeded in every forked process, so gunicorn's workers do not
    share a sequence.
    """
    bits = _random_bits(128) & _VERSION_MASK | _VERSION_4
    text = f"{bits:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def derive_ids(headers: list[tuple[bytes, bytes]]) -> RequestIds:
    found: dict[bytes, str] | None = None
    for name, value in headers:
        if name in _ID_HEADERS:
            if found is None:
                found = {}
            if name not in found:
                found[name] = value.decode("latin-1")
    if found is None:
        # Most requests carry no id: the new one answers as both ids.
        request_id = new_request_id()
        return RequestIds(request_id, request_id, "", None)
    request_id = found[_REQUEST_ID] if _REQUEST_ID in found else new_request_id()
    if len(request_id) > MAX_ID_LENGTH:
        return RequestIds("", "", "", None, "x-request-id must not exceed 100 characters")
    legacy = found.get(_LEGACY_ID, "")
    client = found.get(_CLIENT_ID, "")
    if legacy:
        logger.warning(_LEGACY_WARNING)
        client = client or legacy
    else:
        legacy = client or request_id
    ids = RequestIds(request_id, legacy, client, found.get(_TRACE_ID))
    if len(legacy) > MAX_ID_LENGTH or len(client) > MAX_ID_LENGTH:
        message = "x-ms-request-id and x-ms-client-request-id must not exceed 100 characters"
        return RequestIds(request_id, "", "", None, message)
    return ids


class RequestContext:
    def __init__(
        self,
        app: ASGIApp,
        server_version: str | None,
        id_checked: Mapping[str, frozenset[str]] = ID_CHECKED,
        logged_paths: frozenset[str] = frozenset({"/score", "/swagger.json"}),
        metrics: Metrics | None = None,
        logged_prefixes: tuple[str, ...] = (),
        telemetry: Telemetry | None = None,
    ) -> None:
        self.app = app
        self.server_version = server_version.encode("latin-1") if server_version else None
        # The methods of each path whose requests the id limits apply to: in the reference, the requests routed to
        # its blueprint's views (an unknown path or an unrouted method is answered 404 or 405 before the check).
        self.id_checked = id_checked
        self.logged_paths = logged_paths
        self.logged_prefixes = logged_prefixes  # routes with path parameters: the /v2 and /v1 model routes
        self.metrics = metrics
        self.access_log = AccessLog()
        # Request telemetry, for the requests that get an access line (the reference's: not `GET /`).
        self.telemetry = telemetry
        # The reference's default: the body goes into the telemetry, so it is kept (up to what is sent) as it goes.
        self.capture = telemetry is not None and telemetry.plan.log_response

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        path: str = scope["path"]
        route = self.metrics.route(path) if self.metrics is not None else None
        ids = derive_ids(scope["headers"])
        if ids.rejection is not None:
            if scope["method"] in self.id_checked.get(path, ()):
                await self._reject(ids, scope["headers"], send)
                if route is not None:
                    route.count(431, time.perf_counter() - start)
                return
            ids = RequestIds("", "", "", None)
        traced = path in self.logged_paths or path.startswith(self.logged_prefixes)
        logged = traced and access_logger.isEnabledFor(20)
        # Telemetry's export queue, when this request is traced and the export has started in this process.
        export = self.telemetry.requests if traced and self.telemetry is not None else None
        body: list[bytes] | None = [] if export is not None and self.capture else None
        kept = 0
        status = 0
        length = "N/A"
        extra = ids.response_headers()
        if self.server_version is not None:
            extra.append((_SERVER_VERSION, self.server_version))

        async def send_with_headers(message: Message) -> None:
            nonlocal status, length, kept
            if message["type"] == "http.response.start":
                # Headers the server sets replace any the response already has, rather than being sent twice.
                # Starlette's responses give lower-case names; any other name takes the slower, case-blind way.
                headers = message.get("headers", ())
                clash = False
                for name, value in headers:
                    if name == b"content-length":
                        length = value.decode()
                    elif name in _SET_BY_SERVER or not name.islower():
                        clash = True
                if clash:
                    replaced = {name for name, _ in extra}
                    headers = [(name, value) for name, value in headers if name.lower() not in replaced]
                    length = next((v.decode() for n, v in headers if n.lower() == b"content-length"), "N/A")
                message["headers"] = [*headers, *extra]
                status = message["status"]
                await send(message)
                return
            await send(message)
            if body is not None and kept < RESPONSE_VALUE_BYTES and message["type"] == "http.response.body":
                chunk = message.get("body", b"")
                body.append(chunk)
                kept += len(chunk)
            if logged and not message.get("more_body", False) and message["type"] == "http.response.body":
                log_access()

        def log_access(aborted: bool = False) -> None:
            nonlocal logged
            logged = False
            query = scope.get("query_string", b"")
            target = f"{path}?{query.decode('latin-1')}" if query else path
            elapsed = (time.perf_counter() - start) * 1000.0
            self.access_log.write(scope["method"], target, status, elapsed, length, aborted)

        token = request_id.set(ids.request_id or None)
        if route is not None:
            route.enter()
        if export is not None:
            start_ns = time.time_ns()
            # Log records emitted while serving carry the client's id, read from these only if one is exported.
            headers_token = request_headers.set(scope["headers"])
        error: BaseException | None = None
        try:
            await self.app(scope, receive, send_with_headers)
        except BaseException as exc:
            error = exc
            # A response cut short (a stream whose generator failed) still gets its access line.
            if logged and status:
                log_access(aborted=True)
            raise
        finally:
            request_id.reset(token)
            elapsed = time.perf_counter() - start
            if route is not None:
                route.leave(status, elapsed)
            if export is not None:
                request_headers.reset(headers_token)
                start_and_end = (start_ns, start_ns + int(elapsed * 1e9))
                sent = None if body is None else b"".join(body)[:RESPONSE_VALUE_BYTES]
                export.add(RequestRecord(scope, status, ids.request_id, ids.client_id, start_and_end, sent, error))

    async def _reject(self, ids: RequestIds, request_headers: list[tuple[bytes, bytes]], send: Send) -> None:
        body = json.dumps({"message": ids.rejection}).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"x-ms-run-function-failed", b"False"),
            *ids.response_headers(),
        ]
        # The reference's after-request hook still runs for its 431: the server version and the TraceId echo go out.
        if self.server_version is not None:
            headers.append((_SERVER_VERSION, self.server_version))
        trace = next((value for name, value in request_headers if name == _TRACE_ID), None)
        if trace is not None:
            headers.append((_TRACE_ID, trace))
        await send({"type": "http.response.start", "status": 431, "headers": headers})
        await send({"type": "http.response.body", "body": body})
