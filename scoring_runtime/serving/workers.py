"""Several worker processes: gunicorn's arbiter, with uvicorn workers that run DrainingServer.

Imported only when serving with more than one worker.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
from typing import Any

import uvicorn_worker
from gunicorn import glogging
from gunicorn.app.base import BaseApplication
from gunicorn.arbiter import Arbiter
from gunicorn.errors import HaltServer
from uvicorn_worker import UvicornWorker

from scoring_runtime.app import Preloaded, ScoringApp, preload
from scoring_runtime.auth import Authenticator
from scoring_runtime.config import Settings
from scoring_runtime.errors import STARTUP_FAILURE_EXIT, StartupError
from scoring_runtime.observability import metrics
from scoring_runtime.serving.accept import Shares
from scoring_runtime.serving.http import protocol_class
from scoring_runtime.serving.http.compat import internals_fit
from scoring_runtime.serving.process import settle_garbage_collector
from scoring_runtime.serving.server import DrainingServer
from scoring_runtime.serving.supervise import binds

logger = logging.getLogger("azmlinfsrv")

# The uvicorn-worker releases whose private _serve ScoringWorker replaces (a copy of its body, with our server).
TESTED_UVICORN_WORKER = ("0.4",)
_SERVE_NAMES = ("_serve", "_install_sigquit_handler", "callback_notify", "CONFIG_KWARGS")


@functools.cache
def own_serve_problem() -> str | None:
    """Why ScoringWorker should leave serving to uvicorn-worker's own _serve; None when it need not."""
    version = str(getattr(uvicorn_worker, "__version__", "unknown"))
    if ".".join(version.split(".")[:2]) not in TESTED_UVICORN_WORKER:
        tested = ", ".join(TESTED_UVICORN_WORKER)
        return f"uvicorn-worker {version} is not a release this server was tested with ({tested})"
    missing = [name for name in _SERVE_NAMES if not hasattr(UvicornWorker, name)]
    return f"uvicorn-worker {version} lacks {', '.join(missing)}" if missing else None


def run_gunicorn(settings: Settings, auth: Authenticator) -> int:
    """Serve with `settings.worker_count` workers until stopped; the exit status."""
    internals_fit()  # checked (and any fallback logged) once, in the master: the workers inherit the answer
    problem = own_serve_problem()
    if problem is not None:
        logger.warning(
            "%s. Its workers serve with uvicorn's own server: the request-head bounds still hold; lost until a tested "
            "uvicorn-worker is installed: readiness turning to 503 on SIGTERM, replacing a worker whose run() outlived "
            "WORKER_TIMEOUT, connections balanced across workers.",
            problem,
        )
    if not settings.metrics:
        return _serve(settings, auth)
    # Set before the script is preloaded and the workers forked: prometheus_client reads it when first imported.
    with metrics.multiprocess_directory() as directory:
        logger.info("Metrics of every worker are kept in %s", directory)
        return _serve(settings, auth)


def _serve(settings: Settings, auth: Authenticator) -> int:
    preloaded = None
    if settings.worker_preload:
        try:
            preloaded = preload(settings)
        except StartupError:
            return STARTUP_FAILURE_EXIT
        # Frozen before the fork, the model's objects are never traversed by a worker's collector, which would write
        # to their pages and so copy the memory the workers share.
        settle_garbage_collector()
    # gunicorn's arbiter leaves through sys.exit: 0 on a normal stop, 3 when a worker cannot boot. When a second
    # worker fails to boot while the arbiter is already halting, gunicorn raises HaltServer again, uncaught.
    try:
        Application(settings, auth, preloaded).run()
    except HaltServer as halt:
        logger.error("Shutting down: %s", halt.reason)
        return int(halt.exit_status)
    return 0


class Application(BaseApplication):  # type: ignore[misc]
    """gunicorn's application: its options from our settings, and a ScoringApp in each worker."""

    def __init__(self, settings: Settings, auth: Authenticator, preloaded: Preloaded | None) -> None:
        self.settings = settings
        self._auth = auth
        self._preloaded = preloaded
        super().__init__()

    def load_config(self) -> None:
        options: dict[str, Any] = {
            "bind": [f"{host}:{port}" for host, port in binds(self.settings)],
            "workers": self.settings.worker_count,
            "worker_class": ScoringWorker,
            "logger_class": GunicornLogger,
            "timeout": self.settings.worker_timeout,
            "graceful_timeout": self.settings.graceful_timeout_s,
            "keepalive": 5,
            "proc_name": "scoring_runtime",
            # gunicorn 27 would otherwise share one control socket in $HOME between every instance on the machine.
            "control_socket_disable": True,
            "pre_fork": pre_fork,
            "child_exit": child_exit,
        }
        for key, value in options.items():
            if key in self.cfg.settings:  # control_socket_disable only exists from gunicorn 24 on
                self.cfg.set(key, value)

    def load(self) -> ScoringApp:
        return ScoringApp(self.settings, self._auth, self._preloaded)


class ScoringWorker(UvicornWorker):  # type: ignore[misc]
    """uvicorn-worker with our server (drain, balanced accept, the stuck-run check) and our logging."""

    CONFIG_KWARGS: dict[str, Any] = {"loop": "auto", "http": "auto", "lifespan": "on", "access_log": False}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in ("uvicorn.error", "uvicorn.access"):
            named = logging.getLogger(name)
            named.handlers = []
            named.propagate = True
        logging.getLogger("uvicorn.access").disabled = True
        # gunicorn's own graceful timeout bounds the whole stop; uvicorn's lets in-flight requests finish within it.
        self.config.timeout_graceful_shutdown = self.cfg.graceful_timeout
        # The heartbeat is also the stuck-run() check: once a second, rather than every WORKER_TIMEOUT / 2.
        self.config.timeout_notify = min(self.timeout, 1.0)
        self._server: DrainingServer | None = None
        self._app: ScoringApp | None = None

    async def _serve(self) -> None:
        # As UvicornWorker._serve, with our server.
        app, settings = self.wsgi, self.app.settings
        assert isinstance(app, ScoringApp) and isinstance(settings, Settings)
        self._app = app
        self.config.app = app
        # The protocol with the settings' request-head bounds replaces CONFIG_KWARGS' "auto".
        self.config.http = protocol_class(settings)
        if own_serve_problem() is not None:
            await super()._serve()
            return
        server = DrainingServer(
            self.config, app, settings.heap_keep_mb, shares=_shares(), slot=getattr(self, "scoring_slot", None)
        )
        self._server = server
        self._install_sigquit_handler()
        await server.serve(sockets=self.sockets)
        if not server.started:
            sys.exit(Arbiter.WORKER_BOOT_ERROR)

    async def callback_notify(self) -> None:
        """The heartbeat to gunicorn, and the replacement of this worker when a run() call is stuck.

        The heartbeat comes from the event loop, which a run() stuck on its own thread does not block, so gunicorn
        alone would never notice. A worker whose run() has outlived WORKER_TIMEOUT answers that client, fails the
        requests queued behind it with a 503 to retry, and drains like on SIGTERM; the arbiter starts a new one.
        """
        self.notify()
        app, server = self._app, self._server
        if app is None or server is None:
            return
        server.publish_connections()
        app.sync_metrics()  # run() calls that ended after their request was answered (timed out) are counted
        if app.is_draining:
            return
        if app.too_many_abandoned(f"replacing worker {os.getpid()}"):
            server.drain()
            return
        stuck = app.release_stuck_runs(self.cfg.timeout)
        if stuck:
            logger.error(
                "%d run() call(s) still running after WORKER_TIMEOUT (%d s); replacing worker %d",
                stuck,
                self.cfg.timeout,
                os.getpid(),
            )
            server.drain()


class GunicornLogger(glogging.Logger):  # type: ignore[misc]
    """gunicorn's logger, writing through the root handler that log.configure_logging set up."""

    def setup(self, cfg: Any) -> None:
        self.error_log.handlers = []
        self.error_log.propagate = True
        self.error_log.setLevel(logging.NOTSET)  # follow the root level, i.e. AZUREML_LOG_LEVEL
        self.access_log.disabled = True


_SHARES: Shares | None = None


def _shares() -> Shares:
    """The connection counts, made in the master before the first fork, so that every worker maps the same."""
    global _SHARES
    if _SHARES is None:
        _SHARES = Shares()
    return _SHARES


def pre_fork(server: Any, worker: Any) -> None:
    """gunicorn's hook in the master, before forking a worker: its slot among the connection counts."""
    worker.scoring_slot = _shares().claim()


def child_exit(server: Any, worker: Any) -> None:
    """gunicorn's hook in the master, after a worker exited for any reason (a crash included)."""
    _shares().release(getattr(worker, "scoring_slot", None))
    if os.environ.get(metrics.MULTIPROC_ENV):
        metrics.worker_exited(worker.pid)
