"""gunicorn pieces, imported only when serving with several workers."""

from __future__ import annotations

import logging
from typing import Any

from gunicorn import glogging
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


class GunicornLogger(glogging.Logger):  # type: ignore[misc]
    """gunicorn's logger, writing through the root handler that log.configure_logging set up."""

    def setup(self, cfg: Any) -> None:
        self.error_log.handlers = []
        self.error_log.propagate = True
        self.error_log.setLevel(logging.NOTSET)  # follow the root level, i.e. AZUREML_LOG_LEVEL
        self.access_log.disabled = True
