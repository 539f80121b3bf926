"""The ASGI application: routes, and the lifespan that loads score.py and runs init().

A server (ours in `scoring_runtime.serving`, or any ASGI server that embeds the app) talks to a ScoringApp through
the ASGI interface and through the few methods documented as its serving surface: `begin_draining`, `is_draining`,
`release_stuck_runs`, `stop_stuck_runs`, `too_many_abandoned` and `sync_metrics`. Nothing else of it is meant to be
read or set from outside.
"""

from __future__ import annotations

import asyncio
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

from scoring_runtime._version import __version__
from scoring_runtime.app.cors import Cors
from scoring_runtime.app.documentation import Documentation
from scoring_runtime.app.hot_routes import HotRoutes
from scoring_runtime.app.lifecycle import Preloaded, finish_async_init, load_models, load_user_script
from scoring_runtime.app.model_batches import infer_batch, score_batch
from scoring_runtime.app.open_inference import LOGGED_PREFIXES, OpenInference
from scoring_runtime.app.request_context import ID_CHECKED, RequestContext
from scoring_runtime.app.responses import error_response, handle_http_error, handle_routing_error, options_response
from scoring_runtime.app.scoring import ABANDON_GRACE_S, Scorer
from scoring_runtime.app.served_models import (
    score_script,
    script_catalogue,
    script_repository,
    served_model_schemas,
    serves_models_only,
)
from scoring_runtime.app.swagger import ServiceInfo, build as build_swaggers
from scoring_runtime.auth import Authenticator, authenticator as build_authenticator
from scoring_runtime.config import Settings
from scoring_runtime.contract.loading import run_init
from scoring_runtime.contract.runner import RunThreads
from scoring_runtime.contract.script import UserScript
from scoring_runtime.errors import HTTPError, InternalError, StartupError, WorkerRestarting, WorkerTimeout
from scoring_runtime.observability.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE, Metrics
from scoring_runtime.observability.telemetry import Telemetry, plan as telemetry_plan

logger = logging.getLogger("azmlinfsrv")

LIVE_PATHS = frozenset({"/live", "/v2/health/live"})
READY_PATHS = frozenset({"/ready", "/v2/health/ready"})
METRICS_PATH = "/metrics"


class ScoringApp:
    """ASGI app serving one score.py. Its lifespan imports the script and runs init(), unless given `preloaded`."""

    def __init__(
        self,
        settings: Settings,
        authenticator: Authenticator | None = None,
        preloaded: Preloaded | None = None,
    ) -> None:
        self.settings = settings
        self._script: UserScript | None = preloaded.script if preloaded is not None else None
        self._catalogue = preloaded.catalogue if preloaded is not None else None
        self._init_seconds: float | None = preloaded.init_seconds if preloaded is not None else None
        # Built from the settings unless the server already built it (once, before forking workers).
        auth = authenticator if authenticator is not None else build_authenticator(settings)
        self._auth = auth if auth.enabled else None
        self._runner = RunThreads(settings.max_concurrency)
        self._scorer: Scorer | None = None
        self._draining = False
        prefixes = ("", settings.service_path_prefix) if settings.service_path_prefix else ("",)
        # /swagger.json, and the API page at /docs unless SCORING_API_PAGE is false.
        self._documentation = Documentation(prefixes, settings.service_path_prefix, self._auth, settings.api_page)
        routes = []
        for prefix in prefixes:
            routes += [
                Route(f"{prefix}/", self._health, methods=["GET", "OPTIONS"]),
                Route(f"{prefix}/score", self._score, methods=["GET", "POST", "OPTIONS", "HEAD"]),
                *self._documentation.routes(prefix),
            ]
        # Probes, with the Open Inference Protocol's names too. Answered on the event loop, never behind run().
        routes += [Route(path, self._live, methods=["GET"]) for path in LIVE_PATHS]
        routes += [Route(path, self._ready, methods=["GET"]) for path in READY_PATHS]
        self._metrics: Metrics | None = None
        if settings.metrics:
            # Requests are counted by route; a prefixed route under its unprefixed name.
            labels = {f"{prefix}{path}": path for prefix in prefixes for path in ("/", "/score")}
            labels |= self._documentation.route_labels()
            labels |= {path: path for path in (*LIVE_PATHS, *READY_PATHS, METRICS_PATH)}
            self._metrics = Metrics(labels)
            self._runner.on_abandoned = self._metrics.run_abandoned
            routes.append(Route(METRICS_PATH, self._metrics_page, methods=["GET"]))
        # Without an entry script, the model folder's models are also served over the Open Inference Protocol (and a
        # typed script's run() is too).
        self._models_only = serves_models_only(settings)
        self._open_inference = OpenInference(self._auth)
        routes += self._open_inference.routes()
        handlers: Mapping[Any, Any] = {HTTPError: handle_http_error, HTTPException: handle_routing_error}
        router = Starlette(routes=routes, exception_handlers=handlers)
        router.router.redirect_slashes = False
        hot = {(method, f"{prefix}/score"): self._score for prefix in prefixes for method in ("GET", "POST")}
        hot |= {("GET", f"{prefix}/"): self._health for prefix in prefixes}
        self._hot = HotRoutes(hot, error_response, router)
        app: ASGIApp = self._hot
        if settings.cors_origins:
            logger.info("Enabling CORS for the following origins: %s", ", ".join(settings.cors_origins))
            app = Cors(app, settings.cors_origins, frozenset(route.path for route in routes))
        server_version = f"scoring_runtime/{__version__}" if settings.server_version_header else None
        # The reference's access lines and request telemetry: its blueprint's routes but `/` (it has no /docs).
        logged_paths = frozenset(f"{prefix}{path}" for prefix in prefixes for path in ("/score", "/swagger.json"))
        # Only when telemetry is asked for (and installed) is there any.
        planned = telemetry_plan(settings)
        self._telemetry = Telemetry(planned) if planned is not None else None
        self._http: ASGIApp = RequestContext(
            app,
            server_version,
            id_checked={f"{prefix}{path}": methods for prefix in prefixes for path, methods in ID_CHECKED.items()},
            logged_paths=logged_paths,
            metrics=self._metrics,
            telemetry=self._telemetry,
            logged_prefixes=LOGGED_PREFIXES,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        else:
            await self._http(scope, receive, send)

    # The serving surface: what a server may call besides the ASGI interface.

    @property
    def is_draining(self) -> bool:
        return self._draining

    def begin_draining(self) -> bool:
        """From now on readiness answers 503 (the server is shutting down). True if this call started the drain."""
        started, self._draining = not self._draining, True
        return started

    def release_stuck_runs(self, limit_s: int) -> int:
        """Answer the clients of run() calls running for more than `limit_s` seconds, and of the calls queued behind
        them, so that this worker can be replaced; return how many calls are stuck.

        The threads stay stuck: Python cannot stop them. Only replacing the process frees them.
        """
        overdue = self._answer_overdue(limit_s, replacing=True)
        if overdue:
            self._runner.fail_queued(WorkerRestarting)
        return len(overdue)

    def stop_stuck_runs(self, limit_s: int) -> int:
        """With no process to replace (one worker): answer the clients of run() calls running for more than
        `limit_s` seconds, and stop each call, or abandon its thread, as at a scoring timeout. Return how many."""
        overdue = self._answer_overdue(limit_s, replacing=False)
        for future in overdue:
            self._runner.stop_overdue(future, ABANDON_GRACE_S)
        return len(overdue)

    def _answer_overdue(self, limit_s: int, replacing: bool) -> list[asyncio.Future[Any]]:
        """The run() calls past `limit_s` whose clients were still waiting, now answered with WorkerTimeout."""
        overdue = [future for future in self._runner.overdue(limit_s) if not future.done()]
        for future in overdue:
            future.set_exception(WorkerTimeout(limit_s, replacing))
        return overdue

    def too_many_abandoned(self, replacement: str) -> bool:
        """Whether more abandoned threads are stuck than SCORING_MAX_ABANDONED_RUNS allows, so that this worker must
        be replaced (logged, with `replacement` saying how)."""
        stuck, limit = self._runner.abandoned, self.settings.max_abandoned_runs
        if stuck <= limit:
            return False
        logger.error(
            "%d abandoned run() thread(s) still running, more than SCORING_MAX_ABANDONED_RUNS (%d): %s",
            stuck,
            limit,
            replacement,
        )
        return True

    def sync_metrics(self) -> None:
        """Under gunicorn, write what this worker has counted to the shared metrics files now."""
        if self._metrics is not None:
            self._metrics.sync()

    # The lifespan.

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        await receive()
        # The reference's line, in every worker and whether telemetry is on or not: log queries look for it.
        logger.info("Starting up app insights client")
        # In this process, after any fork: the SDK's export threads do not survive one. Before init(), whose failure
        # is exception telemetry.
        if self._telemetry is not None:
            self._telemetry.start()
        try:
            await self._startup()
        except StartupError:
            self._stop_telemetry()
            await send({"type": "lifespan.startup.failed", "message": ""})
            return
        except BaseException:
            logger.exception("Start-up failed")
            self._stop_telemetry()
            await send({"type": "lifespan.startup.failed", "message": ""})
            return
        await send({"type": "lifespan.startup.complete"})
        await receive()
        self._runner.stop()
        self.sync_metrics()
        self._stop_telemetry()
        await send({"type": "lifespan.shutdown.complete"})

    def _stop_telemetry(self) -> None:
        """Send what telemetry is queued before the process ends (the reference sleeps 30 s after a failed init)."""
        if self._telemetry is not None:
            self._telemetry.stop()

    async def _startup(self) -> None:
        self._runner.start()
        script = self._script
        if script is None and self._models_only:
            started = time.perf_counter()
            self._catalogue = await self._runner.submit(load_models, self.settings)
            self._init_seconds = time.perf_counter() - started
            script = self._script = score_script(self._catalogue)
        if script is None:
            script = load_user_script(self.settings)
            started = time.perf_counter()
            # init() runs on a run thread: the thread run() will use when concurrency is 1, as under the reference.
            pending = await self._runner.submit(run_init, script, self.settings.model_dir)
            await finish_async_init(pending, self.settings.model_dir)
            self._init_seconds = time.perf_counter() - started
            self._script = script
        if self._metrics is not None and self._init_seconds is not None:
            self._metrics.init_seconds.set(self._init_seconds)
        settings = self.settings
        info = ServiceInfo(settings.service_name, settings.service_version, settings.service_path_prefix)
        catalogue = self._catalogue
        model_schemas = served_model_schemas(catalogue) if catalogue is not None else None
        self._documentation.attach(build_swaggers(script.run, info, settings.app_root, model_schemas))
        self._scorer = Scorer(script, self._runner, settings, self._metrics)
        self._scorer.batch = score_batch(script, catalogue, settings.model_max_batch, self._metrics)
        inferences = infer_batch(catalogue, settings.model_max_batch, self._metrics)
        served = catalogue or script_catalogue(script, settings)
        self._open_inference.attach(served, self._scorer, script_repository(), inferences)
        self._hot.routes.update(self._open_inference.hot_routes())
        logger.info("Scoring timeout is set to %d", settings.scoring_timeout_ms)
        logger.info("Worker with pid %d ready for serving traffic", os.getpid())

    # The endpoints.

    async def _health(self, request: Request) -> Response:
        if request.method == "OPTIONS":
            return options_response("GET, HEAD, OPTIONS")
        return Response(b"Healthy", media_type="text/html")

    async def _live(self, request: Request) -> Response:
        return Response(b'{"live": true}', media_type="application/json")

    async def _ready(self, request: Request) -> Response:
        if self._scorer is not None and not self._draining:
            return Response(b'{"ready": true}', media_type="application/json")
        return Response(b'{"ready": false}', status_code=503, media_type="application/json")

    async def _metrics_page(self, request: Request) -> Response:
        if self._metrics is None:
            raise InternalError()
        return Response(self._metrics.page(), media_type=METRICS_CONTENT_TYPE)

    async def _score(self, request: Request) -> Response:
        if self._auth is not None:
            self._auth.check(request.headers.get("authorization"))
        if self._scorer is None:  # Only reachable when the app is served without running its lifespan.
            raise InternalError()
        return await self._scorer(request)
