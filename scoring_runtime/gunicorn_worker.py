"""gunicorn pieces, imported only when serving with several workers."""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from gunicorn import glogging
from gunicorn.arbiter import Arbiter
from uvicorn_worker import UvicornWorker

from scoring_runtime import metrics
from scoring_runtime.accept_balance import Shares
from scoring_runtime.app import ScoringApp
from scoring_runtime.http_protocol import protocol_class
from scoring_runtime.server import DrainingServer

logger = logging.getLogger("scoring_runtime")


class ScoringWorker(UvicornWorker):  # type: ignore[misc]
    """uvicorn-worker with our lifespan handling and our logging (it would otherwise take gunicorn's handlers)."""

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

    async def _serve(self) -> None:
        # As UvicornWorker._serve, with the server that marks the app as draining on SIGTERM.
        self.config.app = self.wsgi
        # The app carries the settings; the protocol with their request-head bounds replaces CONFIG_KWARGS' "auto".
        self.config.http = protocol_class(self.wsgi.settings)
        server = self._server = DrainingServer(self.config, shares=_shares(), slot=getattr(self, "scoring_slot", None))
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
        app, server = self.wsgi, self._server
        if server is not None:
            server.publish_connections()
        if not isinstance(app, ScoringApp) or server is None:
            return
        if app.metrics is not None:
            app.metrics.sync()  # run() calls that ended after their request was answered (timed out) are counted
        if app.draining:
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
