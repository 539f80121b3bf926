"""One /score request: arguments from the request, run() on a run thread (or awaited), the result as a response."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Scope

from scoring_runtime.app.responses import FAILED_HEADER
from scoring_runtime.azureml.aml_request import AMLRequest, RequestHeaders
from scoring_runtime.azureml.aml_response import AMLResponse
from scoring_runtime.azureml.wsgi_response import adopt_response
from scoring_runtime.config import Settings
from scoring_runtime.contract import payload
from scoring_runtime.contract.batches import Batch
from scoring_runtime.contract.deadlines import Deadlines
from scoring_runtime.contract.runner import RunThreads
from scoring_runtime.contract.script import Mode, UserScript
from scoring_runtime.errors import (
    ClientClosedRequest,
    HTTPError,
    InternalError,
    MethodNotAllowed,
    Overloaded,
    PayloadTooLarge,
    ScoringTimeout,
)
from scoring_runtime.models.base import Scored
from scoring_runtime.observability.metrics import Metrics

logger = logging.getLogger("azmlinfsrv")

_EXEC_MS = b"x-ms-run-fn-exec-ms"
# How long a timed-out run(), once interrupted, may take to stop before its thread is abandoned. Python code stops
# within microseconds; a call blocked in C does not stop however long one waits. Its `finally` blocks still run
# on the abandoned thread, whose end is logged.
ABANDON_GRACE_S = 0.1
_END = object()


class Scorer:
    """Serves /score for one loaded script, within the run threads' concurrency and the scoring timeout."""

    def __init__(
        self, script: UserScript, runner: RunThreads, settings: Settings, metrics: Metrics | None = None
    ) -> None:
        self.script = script
        self.runner = runner
        self.metrics = metrics
        self._run_finished: Callable[[float], None] = metrics.run_finished if metrics is not None else _ignore
        self.timeout_ms = settings.scoring_timeout_ms
        self._timeout_s = self.timeout_ms / 1000.0 if self.timeout_ms else None
        self._deadlines = Deadlines(self._timeout_s, self._expire) if self._timeout_s is not None else None
        self.max_request_bytes = settings.max_request_bytes
        self.max_concurrency = settings.max_concurrency
        # Admitted calls (running or waiting for a slot) beyond which a request is turned away with a 503.
        self._capacity = settings.max_concurrency + settings.max_queue
        self._async_slots = asyncio.Semaphore(settings.max_concurrency)
        self._async_outstanding = 0
        # /score's requests scored together when they wait at the same time (a model served without a script).
        self.batch: Batch | None = None

    async def __call__(self, request: Request) -> Response:
        script = self.script
        method = request.method
        if script.mode is not Mode.RAW:
            if method == "OPTIONS":
                response = Response(status_code=200, media_type="text/html")
                response.raw_headers.append((FAILED_HEADER, b"False"))
                return response
            if method == "HEAD":
                raise MethodNotAllowed("Method not allowed")
        # Refused before the body is read: an overloaded server should not spend time on what it will not score.
        self._admit(script.is_async)
        body = await self._read_body(request)
        # And again after: while a slow body arrived, others may have filled the queue, which must stay bounded.
        self._admit(script.is_async)
        if script.is_async:
            self._async_outstanding += 1
            try:
                response = await self._counted(self._score_async(script, request.scope, body))
            finally:
                self._async_outstanding -= 1
        elif self.batch is not None and method == "POST":
            response = await self._counted(self._in_batch(self.batch, (body, None)))
        else:
            response = await self._counted(self._in_thread(_score, script, request.scope, body, self._run_finished))
        if isinstance(response, AMLResponse) and isinstance(response.stream, Iterator):
            # A sync generator is user code too: each chunk is produced on a run thread, never on the event loop.
            response.stream = self._chunks(response.stream)
        return response

    async def serve(self, request: Request, job: Callable[[bytes], Response]) -> Response:
        """Another route's work on a run thread under /score's rules: admission (503 when the queue is full), the
        body limit (413), the scoring timeout; `job` gets the body and builds the response there."""
        self._admit()
        body = await self._read_body(request)
        self._admit()
        return await self._counted(self._in_thread(job, body))

    async def serve_batched(self, request: Request, batch: Batch, extra: Any) -> Response:
        """As `serve`, the work being a call of `batch`, given (body, extra), possibly with other requests' calls."""
        self._admit()
        body = await self._read_body(request)
        self._admit()
        return await self._counted(self._in_batch(batch, (body, extra)))

    async def _counted(self, pending: Awaitable[Response]) -> Response:
        """`pending`'s response; an HTTPError is counted as a failed scoring, anything else logged and a 500."""
        try:
            return await pending
        except HTTPError as error:
            if self.metrics is not None:
                self.metrics.scoring_failed(error)
            raise
        except Exception:
            logger.exception("Encountered Exception")
            raise InternalError() from None

    def _admit(self, is_async: bool = False) -> None:
        outstanding = self._async_outstanding if is_async else self.runner.outstanding
        if outstanding >= self._capacity:
            if self.metrics is not None:
                self.metrics.queue_rejections.inc()
            raise Overloaded(outstanding - self.max_concurrency)

    async def _read_body(self, request: Request) -> bytes:
        """The body, refused with 413 as soon as it is known to be too big: from Content-Length before reading any
        of it, or, for a chunked body, at the chunk that crosses the limit."""
        limit = self.max_request_bytes
        declared = _header(request.scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise PayloadTooLarge(limit)
        # Straight from the ASGI messages: Request.stream() would add an async generator per request.
        receive = request.receive
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                raise ClientClosedRequest()
            chunk: bytes = message.get("body", b"")
            if chunk:
                size += len(chunk)
                if size > limit:
                    raise PayloadTooLarge(limit)
                chunks.append(chunk)
            if not message.get("more_body", False):
                break
        # Most bodies arrive in one piece: keep it rather than copy it.
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    async def _in_thread(self, function: Callable[..., Response], *args: Any) -> Response:
        """function(*args) on a run thread, under the scoring timeout."""
        future = self.runner.submit(function, *args)
        if self._deadlines is not None:
            self._deadlines.watch(future)
        return await future

    async def _in_batch(self, batch: Batch, argument: Any) -> Response:
        future = self.runner.submit_batched(batch, argument)
        if self._deadlines is not None:
            self._deadlines.watch(future)
        response: Response = await future
        return response

    def _expire(self, future: asyncio.Future[Any]) -> None:
        if not future.done():
            logger.error("Scoring timeout after %d ms", self.timeout_ms)
            future.set_exception(ScoringTimeout(self.timeout_ms))
            # Then the call itself is stopped, or its thread given up, so that the next request finds a free slot.
            self.runner.stop_overdue(future, ABANDON_GRACE_S)

    async def _score_async(self, script: UserScript, scope: Scope, body: bytes) -> Response:
        kwargs = _arguments(script, scope, body)
        try:
            # Like the sync path, the time counts from the queueing for a slot.
            result, elapsed_ms = await asyncio.wait_for(self._call_in_slot(script, kwargs), self._timeout_s)
        except asyncio.TimeoutError:
            logger.error("Scoring timeout after %d ms", self.timeout_ms)
            raise ScoringTimeout(self.timeout_ms) from None
        self._run_finished(elapsed_ms)
        return respond(result, elapsed_ms)

    async def _call_in_slot(self, script: UserScript, kwargs: dict[str, Any]) -> tuple[Any, float]:
        async with self._async_slots:
            return await script.call_async(kwargs)

    async def _chunks(self, iterator: Iterator[Any]) -> AsyncIterator[Any]:
        try:
            while True:
                chunk = await self.runner.submit(next, iterator, _END)
                if chunk is _END:
                    return
                yield chunk
        finally:
            # A client that went away leaves the generator suspended: close it so its `finally` blocks run.
            close = getattr(iterator, "close", None)
            if close is not None:
                await self.runner.submit(close)


def _score(script: UserScript, scope: Scope, body: bytes, run_finished: Callable[[float], None]) -> Response:
    """One /score call on a run thread: parse, call run(), encode. Nothing here touches the event loop."""
    result, elapsed_ms = script.call(_arguments(script, scope, body))
    # Recorded here, so that a call that outlived its timeout is still measured when it returns.
    run_finished(elapsed_ms)
    return respond(result, elapsed_ms)


def _ignore(elapsed_ms: float) -> None:
    pass


def _arguments(script: UserScript, scope: Scope, body: bytes) -> dict[str, Any]:
    method: str = scope["method"]
    query: bytes = scope["query_string"]
    if script.mode is Mode.TYPED:
        data = payload.typed_input(method, body, query, _header(scope, b"content-type"))
        kwargs = payload.run_arguments(data, script.parameters, script.required)
    elif script.mode is Mode.PLAIN:
        kwargs = {script.input_parameter: payload.plain_input(method, body, query)}
    elif script.mode is Mode.MODEL:
        kwargs = {script.input_parameter: payload.model_input(method, body, query)}
    else:
        kwargs = {script.input_parameter: AMLRequest(scope, body)}
    if script.wants_headers:
        # Werkzeug's canonical names (`Content-Type`), repeated headers joined by commas, as the reference gives.
        kwargs["request_headers"] = RequestHeaders(scope["headers"]).to_dict()
    return kwargs


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def respond(result: Any, elapsed_ms: float) -> Response:
    """run()'s result as /score's response, with the time the call took."""
    exec_ms = (_EXEC_MS, f"{elapsed_ms:.3f}".encode())
    result = adopt_response(result)  # a Flask/Werkzeug response (the installed reference's AMLResponse) as ours
    if isinstance(result, Response):
        if result.status_code >= 500:
            result.raw_headers[:] = [(k, v) for k, v in result.raw_headers if k != FAILED_HEADER]
            result.raw_headers.append((FAILED_HEADER, b"True"))
        result.raw_headers.append(exec_ms)
        return result
    headers: tuple[tuple[str, str], ...] = ()
    if isinstance(result, Scored):  # a model's answer, with headers that describe it (the method, the classes)
        result, headers = result.value, result.headers
    body, media_type = payload.encode_result(result)
    response = Response(body, media_type=media_type)
    response.raw_headers.extend(((FAILED_HEADER, b"False"), exec_ms))
    response.raw_headers.extend((name.encode("latin-1"), value.encode("latin-1")) for name, value in headers)
    return response
