"""gunicorn pieces, imported only when serving with several workers."""

from __future__ import annotations

import logging
import sys
from typing import Any

from gunicorn import glogging
from gunicorn.arbiter import Arbiter
from uvicorn_worker import UvicornWorker


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

    async def _serve(self) -> None:
        # As UvicornWorker._serve, with the server that marks the app as draining on SIGTERM.
        from scoring_runtime.http_protocol import protocol_class
        from scoring_runtime.server import DrainingServer

        self.config.app = self.wsgi
        # The app carries the settings; the protocol with their request-head bounds replaces CONFIG_KWARGS' "auto".
        self.config.http = protocol_class(self.wsgi.settings)
        server = DrainingServer(config=self.config)
        self._install_sigquit_handler()
        await server.serve(sockets=self.sockets)
        if not server.started:
            sys.exit(Arbiter.WORKER_BOOT_ERROR)


class GunicornLogger(glogging.Logger):  # type: ignore[misc]
    """gunicorn's logger, writing through the root handler that log.configure_logging set up."""

    def setup(self, cfg: Any) -> None:
        self.error_log.handlers = []
        self.error_log.propagate = True
        self.error_log.setLevel(logging.NOTSET)  # follow the root level, i.e. AZUREML_LOG_LEVEL
        self.access_log.disabled = True
