"""The ASGI application: routes, the lifespan that loads score.py, and the one place errors become responses."""

from __future__ import annotations

import gc
import inspect
import json
import logging
import os
import time
from collections.abc import Mapping
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from scoring_runtime import __version__
from scoring_runtime.auth import Authenticator, authenticator as build_authenticator
from scoring_runtime.config import Settings, load_settings
from scoring_runtime.cors import Cors
from scoring_runtime.errors import (
    HTTPError,
    InternalError,
    MethodNotAllowed,
    NotFound,
    ScriptLoadError,
    StartupError,
    WorkerRestarting,
    WorkerTimeout,
)
from scoring_runtime.forms import parse_query
from scoring_runtime.hot_routes import HotRoutes
from scoring_runtime.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE, Metrics
from scoring_runtime.rawhttp import register_azureml_aliases
from scoring_runtime.request_context import RequestContext
from scoring_runtime.runner import RunThreads
from scoring_runtime.scoring import FAILED_HEADER, Scorer
from scoring_runtime.swagger import DEFAULT_VERSION, ServiceInfo, Swaggers, build as build_swaggers
from scoring_runtime.user_script import (
    UserScript,
    export_environment,
    init_failure,
    load_script,
    log_model_dir,
    run_init,
)

logger = logging.getLogger("scoring_runtime")

NOT_FOUND_MESSAGE = (
    "The requested URL was not found on the server. "
    "If you entered the URL manually please check your spelling and try again."
)
ROUTING_405_MESSAGE = "The method is not allowed for the requested URL."
LIVE_PATHS = frozenset({"/live", "/v2/health/live"})
READY_PATHS = frozenset({"/ready", "/v2/health/ready"})
METRICS_PATH = "/metrics"


class ScoringApp:
    """ASGI app serving one score.py. Its lifespan imports the script and runs init() (unless given a loaded one)."""

    def __init__(
        self,
        settings: Settings,
        script: UserScript | None = None,
        authenticator: Authenticator | None = None,
        init_seconds: float | None = None,
    ) -> None:
        self.settings = settings
        self.script = script
        # Built from the settings unless the server already built it (once, before forking workers).
        auth = authenticator if authenticator is not None else build_authenticator(settings)
        self.auth = auth if auth.enabled else None
        # How long init() took, when it ran before this app was made (WORKER_PRELOAD).
        self.init_seconds = init_seconds
        self.runner = RunThreads(settings.max_concurrency)
        self.scorer: Scorer | None = None
        self.swaggers: Swaggers | None = None
        # Set when the server starts shutting down (SIGTERM): readiness answers 503 from then on.
        self.draining = False
        # Set by our own server, whose process serves only this app: process-wide tuning is ours to do then.
        self.owns_process = False
        prefixes = ("", settings.service_path_prefix) if settings.service_path_prefix else ("",)
        routes = []
        for prefix in prefixes:
            routes += [
                Route(f"{prefix}/", self.health, methods=["GET", "OPTIONS"]),
                Route(f"{prefix}/score", self.score, methods=["GET", "POST", "OPTIONS", "HEAD"]),
                Route(f"{prefix}/swagger.json", self.swagger, methods=["GET", "OPTIONS"]),
            ]
        # Probes, with the Open Inference Protocol's names too. Answered on the event loop, never behind run().
        routes += [Route(path, self.live, methods=["GET"]) for path in LIVE_PATHS]
        routes += [Route(path, self.ready, methods=["GET"]) for path in READY_PATHS]
        self.metrics: Metrics | None = None
        if settings.metrics:
            # Requests are counted by route; a prefixed route under its unprefixed name.
            labels = {f"{prefix}{path}": path for prefix in prefixes for path in ("/", "/score", "/swagger.json")}
            labels |= {path: path for path in (*LIVE_PATHS, *READY_PATHS, METRICS_PATH)}
            self.metrics = Metrics(labels)
            routes.append(Route(METRICS_PATH, self.metrics_page, methods=["GET"]))
        handlers: Mapping[Any, Any] = {HTTPError: _error_response, HTTPException: _routing_error}
        router = Starlette(routes=routes, exception_handlers=handlers)
        router.router.redirect_slashes = False
        hot = {(method, f"{prefix}/score"): self.score for prefix in prefixes for method in ("GET", "POST")}
        hot |= {("GET", f"{prefix}/"): self.health for prefix in prefixes}
        app: ASGIApp = HotRoutes(hot, error_response, router)
        if settings.cors_origins:
            logger.info("Enabling CORS for the following origins: %s", ", ".join(settings.cors_origins))
            app = Cors(app, settings.cors_origins, frozenset(route.path for route in routes))
        server_version = f"scoring_runtime/{__version__}" if settings.server_version_header else None
        self._http = RequestContext(
            app,
            server_version,
            health_paths=frozenset(f"{prefix}/" for prefix in prefixes) | LIVE_PATHS | READY_PATHS | {METRICS_PATH},
            logged_paths=frozenset(f"{prefix}{path}" for prefix in prefixes for path in ("/score", "/swagger.json")),
            metrics=self.metrics,
        )

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
        if self.metrics is not None:
            self.metrics.sync()
        await send({"type": "lifespan.shutdown.complete"})

    async def startup(self) -> None:
        self.runner.start()
        script = self.script
        if script is None:
            script = load_user_script(self.settings)
            started = time.perf_counter()
            # init() runs on a run thread: the thread run() will use when concurrency is 1, as under the reference.
            pending = await self.runner.submit(run_init, script, self.settings.model_dir)
            await finish_async_init(pending, self.settings.model_dir)
            self.init_seconds = time.perf_counter() - started
            self.script = script
        if self.metrics is not None and self.init_seconds is not None:
            self.metrics.init_seconds.set(self.init_seconds)
        settings = self.settings
        info = ServiceInfo(settings.service_name, settings.service_version, settings.service_path_prefix)
        self.swaggers = build_swaggers(script.run, info, settings.app_root)
        self.scorer = Scorer(script, self.runner, settings, self.metrics)
        logger.info("Scoring timeout is set to %d", settings.scoring_timeout_ms)
        if self.owns_process:
            settle_garbage_collector()
        logger.info("Worker with pid %d ready for serving traffic", os.getpid())

    async def health(self, request: Request) -> Response:
        if request.method == "OPTIONS":
            return _options_response("GET, HEAD, OPTIONS")
        return Response(b"Healthy", media_type="text/html")

    @property
    def is_ready(self) -> bool:
        return self.scorer is not None and not self.draining

    def release_stuck_runs(self, limit_s: int) -> int:
        """Answer the clients of run() calls running for more than `limit_s` seconds, and of the calls queued behind
        them, so that this worker can be replaced; return how many calls are stuck.

        The threads stay stuck: Python cannot stop them. Only replacing the process frees them.
        """
        overdue = self.runner.overdue(limit_s)
        if overdue:
            for future in overdue:
                if not future.done():
                    future.set_exception(WorkerTimeout(limit_s))
            self.runner.fail_queued(WorkerRestarting)
        return len(overdue)

    async def live(self, request: Request) -> Response:
        return Response(b'{"live": true}', media_type="application/json")

    async def ready(self, request: Request) -> Response:
        if self.is_ready:
            return Response(b'{"ready": true}', media_type="application/json")
        return Response(b'{"ready": false}', status_code=503, media_type="application/json")

    async def metrics_page(self, request: Request) -> Response:
        if self.metrics is None:
            raise InternalError()
        return Response(self.metrics.page(), media_type=METRICS_CONTENT_TYPE)

    async def score(self, request: Request) -> Response:
        if self.auth is not None:
            self.auth.check(request.headers.get("authorization"))
        if self.scorer is None:  # Only reachable when the app is served without running its lifespan.
            raise InternalError()
        return await self.scorer(request)

    async def swagger(self, request: Request) -> Response:
        if self.auth is not None and self.auth.protect_swagger:
            self.auth.check(request.headers.get("authorization"))
        if request.method == "OPTIONS":
            return _options_response("GET, HEAD, OPTIONS")
        if self.swaggers is None:
            raise InternalError()
        version = parse_query(request.scope["query_string"]).get("version", DEFAULT_VERSION)
        response = Response(self.swaggers.get(version), media_type="application/json")
        response.raw_headers.append((FAILED_HEADER, b"False"))
        return response


async def finish_async_init(pending: Any, model_dir: str | None) -> None:
    """Await what init() returned when it is `async def init`."""
    if not inspect.isawaitable(pending):
        return
    try:
        await pending
    except BaseException as exc:
        raise init_failure(exc, model_dir) from None
    logger.info("Users's init has completed successfully")


def settle_garbage_collector() -> None:
    """Keep the cyclic garbage collector off the request path once the model is loaded.

    Everything alive after init() (modules, the model) lives as long as the process. Frozen, it is no longer scanned
    by every full collection, which under load took tens of milliseconds each time and made the slowest 1% of
    requests several times slower than the median. Young collections are made rarer too: requests leave little
    cyclic garbage.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)


def load_user_script(settings: Settings) -> UserScript:
    """Import score.py the way every server path does: azureml aliases registered, environment exported."""
    register_azureml_aliases()
    export_environment(settings)
    try:
        return load_script(settings)
    except ScriptLoadError:
        log_model_dir(settings.model_dir)
        raise


def _options_response(allow: str) -> Response:
    return Response(status_code=200, headers={"Allow": allow}, media_type="text/html")


def _json_error(status_code: int, message: str, failed: bool, headers: Mapping[str, str] | None = None) -> Response:
    response = Response(
        json.dumps({"message": message}), status_code=status_code, headers=headers, media_type="application/json"
    )
    response.raw_headers.append((FAILED_HEADER, b"True" if failed else b"False"))
    return response


def error_response(exc: HTTPError) -> Response:
    """The one place an HTTPError becomes a response: `{"message": ...}` with x-ms-run-function-failed."""
    return _json_error(exc.status_code, exc.message, exc.run_function_failed, exc.headers)


async def _error_response(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPError)
    return error_response(exc)


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
