"""Access lines: one per logged request, in the reference's line format, written cheaply on the default set-up.

Going through `logging` costs a LogRecord, a caller lookup, time formatting and three levels of handler calls for
every request; on a trivial run() that was a quarter of the server's CPU. With the default configuration (records
of `azmlinfsrv` reach only our own stdout handler, in the text format, with nothing filtering them) the
line is formatted here, byte for byte what the handler would write: the lines of one event loop pass together, under
one acquisition of the handler's lock. Any other set-up (JSON lines, a logging.json, a handler the script added) gets
the record through `logging`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import Any

from scoring_runtime.observability.log import access_logger, line_handler

_INFO = logging.INFO
# getpid() is a system call each time (glibc no longer caches it): read once, and again in a forked child.
_pid = os.getpid()


def _forked() -> None:
    global _pid
    _pid = os.getpid()


os.register_at_fork(after_in_child=_forked)


class AccessLog:
    def __init__(self) -> None:
        self._second = -1
        self._stamp = ""
        # Lines of this loop pass, written together when the loop has run what is ready: one lock, one stream write
        # and one flush for the requests answered together, and none waits longer than that pass.
        self._pending: list[tuple[float, str, str, int, float, str, bool]] = []
        self._handler: logging.StreamHandler[Any] | None = None

    def write(self, method: str, target: str, status: int, elapsed_ms: float, size: str, aborted: bool) -> None:
        handler = _direct_handler()
        if handler is None:
            self._through_logging(method, target, status, elapsed_ms, size, aborted)
            return
        if not self._pending:
            self._handler = handler
            asyncio.get_running_loop().call_soon(self._write_pending)
        self._pending.append((time.time(), method, target, status, elapsed_ms, size, aborted))

    def _write_pending(self) -> None:
        pending, self._pending = self._pending, []
        handler, self._handler = self._handler, None
        if handler is None or not pending:
            return
        prefix = f" I [{_pid}] azmlinfsrv - "
        lines = []
        for now, method, target, status, elapsed_ms, size, aborted in pending:
            second = int(now)
            if second != self._second:
                self._second = second
                self._stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(second))
            millis = int((now - second) * 1000)
            end = " aborted\n" if aborted else "\n"
            lines.append(f"{self._stamp},{millis:03d}{prefix}{method} {target} {status} {elapsed_ms:.3f}ms {size}{end}")
        handler.acquire()
        try:
            handler.stream.write("".join(lines))
            handler.flush()
        except Exception:
            # A stream that fails is logging's to report.
            for _, method, target, status, elapsed_ms, size, aborted in pending:
                self._through_logging(method, target, status, elapsed_ms, size, aborted)
        finally:
            handler.release()

    @staticmethod
    def _through_logging(method: str, target: str, status: int, elapsed_ms: float, size: str, aborted: bool) -> None:
        message = f"{method} {target} {status} {elapsed_ms:.3f}ms {size}{' aborted' if aborted else ''}"
        fields: dict[str, object] = {"method": method, "path": target, "status": status}
        fields["duration_ms"] = round(elapsed_ms, 3)
        fields["size"] = int(size) if size.isdigit() else None
        if aborted:
            fields["aborted"] = True
        access_logger.info("%s", message, extra=fields)


def _direct_handler() -> logging.StreamHandler[Any] | None:
    """Our text handler, when it is the only place an access record would go; otherwise None."""
    handler = line_handler()
    if handler is None or handler.filters or handler.level > _INFO or logging.root.manager.disable >= _INFO:
        return None
    node: logging.Logger | None = access_logger
    if node is not None and (node.filters or node.disabled):
        return None
    while node is not None and node is not logging.root:
        if not node.propagate:
            return None
        for other in node.handlers:
            # Telemetry's log export takes only errors here (a level above INFO): it would never get an access line.
            if other.level <= _INFO:
                return None
        node = node.parent
    handlers = logging.root.handlers
    return handler if len(handlers) == 1 and handlers[0] is handler else None
