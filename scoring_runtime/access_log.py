"""Access lines: one per logged request, in the reference's line format, written cheaply on the default set-up.

Going through `logging` costs a LogRecord, a caller lookup, time formatting and three levels of handler calls for
every request; on a trivial run() that was a quarter of the server's CPU. With the default configuration (records
of `scoring_runtime.access` reach only our own stdout handler, in the text format, with nothing filtering them) the
line is formatted here, byte for byte what the handler would write, and written under the handler's lock. Any
other set-up (JSON lines, a logging.json, a handler the script added) gets the record through `logging`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import Any

from scoring_runtime.log import access_logger, line_handler

_INFO = logging.INFO


class AccessLog:
    def __init__(self) -> None:
        self._second = -1
        self._stamp = ""
        self._flush_pending: logging.StreamHandler[Any] | None = None

    def write(self, method: str, target: str, status: int, elapsed_ms: float, size: str, aborted: bool) -> None:
        message = f"{method} {target} {status} {elapsed_ms:.3f}ms {size}{' aborted' if aborted else ''}"
        handler = _direct_handler()
        if handler is not None:
            now = time.time()
            second = int(now)
            if second != self._second:
                self._second = second
                self._stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(second))
            millis = int((now - second) * 1000)
            line = f"{self._stamp},{millis:03d} I [{os.getpid()}] scoring_runtime.access - {message}\n"
            handler.acquire()
            try:
                handler.stream.write(line)
            except Exception:
                pass  # a stream that fails is logging's to report: fall through to it
            else:
                self._flush_soon(handler)
                return
            finally:
                handler.release()
        fields: dict[str, object] = {"method": method, "path": target, "status": status}
        fields["duration_ms"] = round(elapsed_ms, 3)
        fields["size"] = int(size) if size.isdigit() else None
        if aborted:
            fields["aborted"] = True
        access_logger.info("%s", message, extra=fields)

    def _flush_soon(self, handler: logging.StreamHandler[Any]) -> None:
        """Flush once the event loop has run what is ready: the lines of requests answered together go out in one
        write instead of one each, and none waits longer than that."""
        if self._flush_pending is None:
            self._flush_pending = handler
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        handler, self._flush_pending = self._flush_pending, None
        if handler is not None:
            handler.flush()


def _direct_handler() -> logging.StreamHandler[Any] | None:
    """Our text handler, when it is the only place an access record would go; otherwise None."""
    handler = line_handler()
    if handler is None or handler.filters or handler.level > _INFO or logging.root.manager.disable >= _INFO:
        return None
    node: logging.Logger | None = access_logger
    if node is not None and (node.filters or node.disabled):
        return None
    while node is not None and node is not logging.root:
        if node.handlers or not node.propagate:
            return None
        node = node.parent
    handlers = logging.root.handlers
    return handler if len(handlers) == 1 and handlers[0] is handler else None
