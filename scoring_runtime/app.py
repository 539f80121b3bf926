"""The ASGI application: routes, the lifespan that loads score.py, and the one place errors become responses."""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import os
from collections.abc import Mapping
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from scoring_runtime import __version__, payload
from scoring_runtime.config import Settings, load_settings
from scoring_runtime.errors import (
    HTTPError,
    InternalError,
    MethodNotAllowed,
    NotFound,
    ScoringTimeout,
    ScriptLoadError,
    StartupError,
)
from scoring_runtime.rawhttp import AMLRequest, register_azureml_aliases
from scoring_runtime.request_context import RequestContext
from scoring_runtime.runner import RunThreads
from scoring_runtime.user_script import (
    Mode,
    UserScript,
    export_environment,
    init_failure,
    load_script,
    log_model_dir,
    run_init,
)

logger = logging.getLogger("scoring_runtime")

_FAILED = b"x-ms-run-function-failed"
_EXEC_MS = b"x-ms-run-fn-exec-ms"
NOT_FOUND_MESSAGE = (
    "The requested URL was not found on the server. "
    "If you entered the URL manually please check your spelling and try again."
)
ROUTING_405_MESSAGE = "The method is not allowed for the requested URL."


class ScoringApp:
    """ASGI app serving one score.py. Its lifespan imports the script and runs init() (unless given a loaded one)."""

    def __init__(self, settings: Settings, script: UserScript | None = None) -> None:
        self.settings = settings
        self.script = script
        self.runner = RunThreads(settings.max_concurrency)
        self._async_slots = asyncio.Semaphore(settings.max_concurrency)
        self._timeout_s = settings.scoring_timeout_ms / 1000.0 if settings.scoring_timeout_ms else None
        routes = [
            Route("/", self.health, methods=["GET", "OPTIONS"]),
            Route("/score", self.score, methods=["GET", "POST", "OPTIONS", "HEAD"]),
        ]
        handlers: Mapping[Any, Any] = {HTTPError: _error_response, HTTPException: _routing_error}
        router = Starlette(routes=routes, exception_handlers=handlers)
        router.router.redirect_slashes = False
        server_version = f"scoring_runtime/{__version__}" if settings.server_version_header else None
        self._http = RequestContext(router, server_version)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        else:
            await self._http(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        await receive()
        try:
            await self.startup()
        except StartupError:
            await send({"type": "lifespan.startup.failed", "message": ""})
            return
        except BaseException:
            logger.exception("Start-up failed")
            await send({"type": "lifespan.startup.failed", "message": ""})
            return
        await send({"type": "lifespan.startup.complete"})
        await receive()
        self.runner.stop()
        await send({"type": "lifespan.shutdown.complete"})

    async def startup(self) -> None:
        self.runner.start()
        if self.script is None:
            script = load_user_script(self.settings)
            # init() runs on a run thread: the thread run() will use when concurrency is 1, as under the reference.
            pending = await self.runner.submit(run_init, script, self.settings.model_dir)
            await finish_async_init(pending, self.settings.model_dir)
            self.script = script
        logger.info("Scoring timeout is set to %d", self.settings.scoring_timeout_ms)
        logger.info("Worker with pid %d ready for serving traffic", os.getpid())

    async def health(self, request: Request) -> Response:
        if request.method == "OPTIONS":
            return Response(status_code=200, headers={"Allow": "GET, HEAD, OPTIONS"}, media_type="text/html")
        return Response(b"Healthy", media_type="text/html")

    async def score(self, request: Request) -> Response:
        script = self.script
        if script is None:  # Only reachable when the app is served without running its lifespan.
            raise InternalError()
        method = request.method
        if script.mode is not Mode.RAW:
            if method == "OPTIONS":
                response = Response(status_code=200, media_type="text/html")
                response.raw_headers.append((_FAILED, b"False"))
                return response
            if method == "HEAD":
                raise MethodNotAllowed("Method not allowed")
        body = await request.body()
        try:
            if script.is_async:
                return await self._score_async(script, request.scope, body)
            return await self._score_in_thread(script, request.scope, body)
        except HTTPError:
            raise
        except Exception:
            logger.exception("Encountered Exception")
            raise InternalError() from None

    async def _score_in_thread(self, script: UserScript, scope: Scope, body: bytes) -> Response:
        future = self.runner.submit(_score, script, scope, body)
        if self._timeout_s is None:
            return await future
        timer = asyncio.get_running_loop().call_later(self._timeout_s, self._expire, future)
        try:
            return await future
        finally:
            timer.cancel()

    def _expire(self, future: asyncio.Future[Response]) -> None:
        if not future.done():
            logger.error("Scoring timeout after %d ms", self.settings.scoring_timeout_ms)
            future.set_exception(ScoringTimeout(self.settings.scoring_timeout_ms))

    async def _score_async(self, script: UserScript, scope: Scope, body: bytes) -> Response:
        kwargs = _arguments(script, scope, body)
        try:
            # Like the sync path, the time counts from the queueing for a slot.
            result, elapsed_ms = await asyncio.wait_for(self._call_in_slot(script, kwargs), self._timeout_s)
        except asyncio.TimeoutError:
            logger.error("Scoring timeout after %d ms", self.settings.scoring_timeout_ms)
            raise ScoringTimeout(self.settings.scoring_timeout_ms) from None
        return _respond(result, elapsed_ms)

    async def _call_in_slot(self, script: UserScript, kwargs: dict[str, Any]) -> tuple[Any, float]:
        async with self._async_slots:
            return await script.call_async(kwargs)


async def finish_async_init(pending: Any, model_dir: str | None) -> None:
    """Await what init() returned when it is `async def init`."""
    if not inspect.isawaitable(pending):
        return
    try:
        await pending
    except BaseException as exc:
        raise init_failure(exc, model_dir) from None
    logger.info("Users's init has completed successfully")


def load_user_script(settings: Settings) -> UserScript:
    """Import score.py the way every server path does: azureml aliases registered, environment exported."""
    register_azureml_aliases()
    export_environment(settings)
    try:
        return load_script(settings)
    except ScriptLoadError:
        log_model_dir(settings.model_dir)
        raise


def _score(script: UserScript, scope: Scope, body: bytes) -> Response:
    """One /score call on a run thread: parse, call run(), encode. Nothing here touches the event loop."""
    result, elapsed_ms = script.call(_arguments(script, scope, body))
    return _respond(result, elapsed_ms)


def _arguments(script: UserScript, scope: Scope, body: bytes) -> dict[str, Any]:
    method: str = scope["method"]
    query: bytes = scope["query_string"]
    if script.mode is Mode.TYPED:
        data = payload.typed_input(method, body, query, _header(scope, b"content-type"))
        kwargs = payload.run_arguments(data, script.parameters, script.required)
    elif script.mode is Mode.PLAIN:
        kwargs = {script.input_parameter: payload.plain_input(method, body, query)}
    else:
        kwargs = {script.input_parameter: AMLRequest(scope, body)}
    if script.wants_headers:
        kwargs["request_headers"] = _headers_dict(scope)
    return kwargs


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _headers_dict(scope: Scope) -> dict[str, str]:
    """Request headers with Werkzeug's canonical names (`Content-Type`), repeated headers joined by commas."""
    headers: dict[str, str] = {}
    for key, value in scope["headers"]:
        name = key.decode("latin-1").title()
        text = value.decode("latin-1")
        headers[name] = f"{headers[name]}, {text}" if name in headers else text
    return headers


def _respond(result: Any, elapsed_ms: float) -> Response:
    exec_ms = (_EXEC_MS, f"{elapsed_ms:.3f}".encode())
    if isinstance(result, Response):
        if result.status_code >= 500:
            result.raw_headers[:] = [(k, v) for k, v in result.raw_headers if k != _FAILED]
            result.raw_headers.append((_FAILED, b"True"))
        result.raw_headers.append(exec_ms)
        return result
    body, media_type = payload.encode_result(result)
    response = Response(body, media_type=media_type)
    response.raw_headers.extend(((_FAILED, b"False"), exec_ms))
    return response


def _json_error(status_code: int, message: str, failed: bool, headers: Mapping[str, str] | None = None) -> Response:
    response = Response(
        json.dumps({"message": message}), status_code=status_code, headers=headers, media_type="application/json"
    )
    response.raw_headers.append((_FAILED, b"True" if failed else b"False"))
    return response


async def _error_response(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPError)
    return _json_error(exc.status_code, exc.message, exc.run_function_failed, exc.headers)


async def _routing_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return await _error_response(request, NotFound(NOT_FOUND_MESSAGE))
    if exc.status_code == 405:
        return await _error_response(request, MethodNotAllowed(ROUTING_405_MESSAGE, dict(exc.headers or {})))
    return _json_error(exc.status_code, exc.detail, False, exc.headers)


def create_app(
    entry_script: str | os.PathLike[str] | None = None, model_dir: str | os.PathLike[str] | None = None, **settings: Any
) -> ScoringApp:
    """The ASGI app for a score.py, for tools that embed scoring_runtime.

    Keyword settings (field names of `scoring_runtime.config.Settings`) win over the environment and config file.
    The app's lifespan imports the script and calls init(); serve it with lifespan enabled.
    """
    overrides = {"entry_script": entry_script, "model_dir": model_dir, **settings}
    loaded, warnings = load_settings(
        {k: os.fspath(v) if isinstance(v, os.PathLike) else v for k, v in overrides.items()}
    )
    for warning in warnings:
        logger.warning(warning)
    return ScoringApp(loaded)
