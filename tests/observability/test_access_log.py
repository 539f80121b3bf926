"""Access lines written directly are byte for byte what logging would write."""

from __future__ import annotations

import asyncio
import io
import logging
import os
import sys
import time
from collections.abc import Iterator

import pytest

from scoring_runtime.observability import access_log, log
from scoring_runtime.observability.access_log import AccessLog


@pytest.fixture
def stdout() -> Iterator[io.StringIO]:
    """The text-format logging set-up, writing to a buffer instead of the real stdout."""
    buffer = io.StringIO()
    root = logging.getLogger()
    real, sys.stdout = sys.stdout, buffer
    handlers, level = list(root.handlers), root.level
    try:
        log.configure_logging("INFO")
        yield buffer
    finally:
        sys.stdout = real
        root.handlers[:] = handlers
        root.setLevel(level)


def _write(lines: AccessLog, *args: object) -> None:
    async def write() -> None:
        lines.write(*args)  # type: ignore[arg-type]
        await asyncio.sleep(0)  # the flush runs on the next pass of the loop

    asyncio.run(write())


def test_direct_access_lines_are_what_logging_would_write(stdout: io.StringIO, monkeypatch: pytest.MonkeyPatch) -> None:
    handler = log.line_handler()
    assert handler is not None
    logging.getLogger().handlers[:] = [handler]  # without pytest's own capturing handler
    assert access_log._direct_handler() is log.line_handler() is not None  # the default set-up takes the short way
    monkeypatch.setattr(time, "time", lambda: 1_790_000_000.25)
    _write(AccessLog(), "POST", "/score?x=1", 200, 1.5, "15", False)
    _write(AccessLog(), "GET", "/score", 500, 0.25, "N/A", True)
    record = logging.LogRecord("azmlinfsrv", logging.INFO, __file__, 1, "POST /score?x=1 200 1.500ms 15", (), None)
    record.created, record.msecs = 1_790_000_000.25, 250.0
    expected = log.line_handler().format(record)  # type: ignore[union-attr]
    first, second = stdout.getvalue().splitlines()
    assert first == expected
    assert second.endswith(" I [%d] azmlinfsrv - GET /score 500 0.250ms N/A aborted" % os.getpid())


def test_a_handler_the_script_adds_gets_the_access_lines(stdout: io.StringIO) -> None:
    seen: list[logging.LogRecord] = []

    class Collecting(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    logging.getLogger().addHandler(Collecting())
    _write(AccessLog(), "POST", "/score", 200, 1.0, "2", False)
    assert [record.getMessage() for record in seen] == ["POST /score 200 1.000ms 2"]
    assert (seen[0].method, seen[0].status, seen[0].size) == ("POST", 200, 2)  # type: ignore[attr-defined]
    assert stdout.getvalue().endswith(" azmlinfsrv - POST /score 200 1.000ms 2\n")


def test_handlers_above_info_on_the_way_keep_the_short_way(stdout: io.StringIO) -> None:
    """Telemetry's log export puts a handler at ERROR on `azmlinfsrv`: access lines would never reach it."""
    handler = log.line_handler()
    logging.getLogger().handlers[:] = [handler]  # type: ignore[list-item]
    server = logging.getLogger("azmlinfsrv")
    errors_only, everything = logging.Handler(logging.ERROR), logging.Handler()
    server.addHandler(errors_only)
    try:
        assert access_log._direct_handler() is handler is not None
        server.addHandler(everything)
        assert access_log._direct_handler() is None
    finally:
        server.removeHandler(errors_only)
        server.removeHandler(everything)
