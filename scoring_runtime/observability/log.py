"""Logging in the reference server's line format, the print() hook, and the user's logging.json override."""

from __future__ import annotations

import builtins
import contextvars
import json
import logging
import logging.config
import sys
import time
from pathlib import Path
from typing import Any

import orjson

from scoring_runtime.config import missing_module
from scoring_runtime.errors import StreamAborted

LINE_FORMAT = "%(asctime)s %(levelname).1s [%(process)d] %(name)s - %(message)s"

# The reference's logger names: operators' queries, alerts and logging.json files name them.
logger = logging.getLogger("azmlinfsrv")
# The reference logs its per-request line on `azmlinfsrv` itself, not on a child.
access_logger = logger
print_logger = logging.getLogger("azmlinfsrv.print")

_original_print = builtins.print

# The x-request-id of the request being served. Run threads see it too: jobs run in a copy of the caller's context.
request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("scoring_request_id", default=None)

# Attributes an access record carries (as `extra`), written as fields of their own in JSON lines.
ACCESS_FIELDS = ("method", "path", "status", "duration_ms", "size", "aborted")


# The stdout handler configure_logging installed for the text format, if it did.
_line_handler: logging.StreamHandler[Any] | None = None


def line_handler() -> logging.StreamHandler[Any] | None:
    """The handler that writes the reference's text lines to stdout, when configure_logging set one up."""
    return _line_handler


class UTCFormatter(logging.Formatter):
    converter = staticmethod(time.gmtime)


class ReferenceFormatter(UTCFormatter):
    """azmlinfsrv's `log_config.AMLLogFormatter`: its line format by default, in UTC. Named by logging.json files
    written for the reference."""

    def __init__(self, fmt: str | None = None, datefmt: str | None = None, style: Any = "%") -> None:
        super().__init__(fmt=fmt or LINE_FORMAT, datefmt=datefmt, style=style)


class RootAccessFilter(logging.Filter):
    """azmlinfsrv's `log_config.RootAccessFilter`: drops access records of the liveness probe."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "GET / HTTP/1.1" not in record.getMessage()


# The reference's logging classes that a logging.json written for it names, and ours that stand in for them when the
# reference is not installed (dictConfig would otherwise fail to import them, and the server not start).
_REFERENCE_CLASSES = {
    "azureml_inference_server_http.log_config.AMLLogFormatter": f"{__name__}.ReferenceFormatter",
    "azureml_inference_server_http.log_config.RootAccessFilter": f"{__name__}.RootAccessFilter",
}


class JSONFormatter(logging.Formatter):
    """One JSON object per record: timestamp (RFC 3339, UTC), level, logger, message, pid, request id, and the
    access fields or the traceback when the record has them."""

    def format(self, record: logging.LogRecord) -> str:
        created = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        line: dict[str, Any] = {
            "timestamp": f"{created}.{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
            "request_id": request_id.get(),
        }
        for name in ACCESS_FIELDS:
            if name in record.__dict__:
                line[name] = record.__dict__[name]
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return orjson.dumps(line, default=str).decode()


def _not_stream_abort(record: logging.LogRecord) -> bool:
    """Drop the server's report of a StreamAborted: the stream's real error was logged where it happened."""
    return not (record.exc_info and isinstance(record.exc_info[1], StreamAborted))


def configure_logging(level: str, override_dirs: tuple[Path, ...] = (), log_format: str = "text") -> None:
    """Send every logger (ours, uvicorn's, gunicorn's, the user's) through one stdout handler on the root logger.

    The root logger is configured, unlike the reference, so that `logging.info` in score.py is not lost.
    """
    global _line_handler
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JSONFormatter() if log_format == "json" else UTCFormatter(LINE_FORMAT))
    _line_handler = None if log_format == "json" else handler
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "gunicorn.error"):
        named = logging.getLogger(name)
        named.handlers = []
        named.propagate = True
        named.setLevel(logging.NOTSET)
        if _not_stream_abort not in named.filters:
            named.addFilter(_not_stream_abort)
    # Our own access lines replace the servers' ones.
    for name in ("uvicorn.access", "gunicorn.access"):
        logging.getLogger(name).disabled = True
    for directory in override_dirs:
        candidate = directory / "logging.json"
        if candidate.is_file():
            _apply_override(candidate)
            break


def _apply_override(path: Path) -> None:
    config: dict[str, Any] = json.loads(path.read_text())
    config.setdefault("disable_existing_loggers", False)
    if missing_module(("azureml_inference_server_http",)) is not None:
        _stand_in_for_reference_classes(config)
    logging.config.dictConfig(config)
    logger.info("Loaded logging config from %s", path)


def _stand_in_for_reference_classes(config: dict[str, Any]) -> None:
    for section in ("formatters", "filters", "handlers"):
        entries = config.get(section)
        if not isinstance(entries, dict):
            continue
        for entry in entries.values():
            if not isinstance(entry, dict):
                continue
            for key in ("class", "()"):
                named = entry.get(key)
                if isinstance(named, str) and named in _REFERENCE_CLASSES:
                    entry[key] = _REFERENCE_CLASSES[named]


def install_print_hook() -> None:
    """Route print() to stdout, or with no file, to the `azmlinfsrv.print` logger, one record per call."""
    builtins.print = _logging_print


def uninstall_print_hook() -> None:
    builtins.print = _original_print


def _logging_print(
    *args: object, sep: str | None = " ", end: str | None = "\n", file: Any = None, flush: bool = False
) -> None:
    if file is not None and file is not sys.stdout:
        _original_print(*args, sep=sep, end=end, file=file, flush=flush)
        return
    print_logger.info((" " if sep is None else sep).join(str(arg) for arg in args))
