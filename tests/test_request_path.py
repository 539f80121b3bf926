"""The cheap parts of the request path (issue 5) behave exactly like what they replace."""

from __future__ import annotations

import asyncio
import io
import logging
import os
import random
import re
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import httpx2 as httpx
import pytest

from scoring_runtime.app.request_context import new_request_id
from scoring_runtime.contract.runner import RunThreads
from scoring_runtime.observability import access_log, log
from scoring_runtime.observability.access_log import AccessLog
from scoring_runtime.serving.http.head_with_body import HeadWithBody
from tests.conftest import ServerFactory
from tests.helpers import SCRIPTS


def test_request_ids_are_version_4_uuids() -> None:
    ids = {new_request_id() for _ in range(20_000)}
    assert len(ids) == 20_000
    for text in list(ids)[:500]:
        parsed = uuid.UUID(text)
        assert (parsed.version, parsed.variant, str(parsed)) == (4, uuid.RFC_4122, text)


@pytest.mark.skipif(not hasattr(os, "SCHED_BATCH"), reason="Linux scheduling policy")
def test_run_threads_do_not_preempt_the_event_loop() -> None:
    async def policy() -> int:
        threads = RunThreads(1)
        threads.start()
        try:
            return await threads.submit(os.sched_getscheduler, 0)
        finally:
            threads.stop()

    assert asyncio.run(policy()) == os.SCHED_BATCH


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
    logging.getLogger().handlers[:] = [log.line_handler()]  # without pytest's own capturing handler
    assert access_log._direct_handler() is log.line_handler() is not None  # the default set-up takes the short way
    monkeypatch.setattr(access_log.time, "time", lambda: 1_790_000_000.25)
    _write(AccessLog(), "POST", "/score?x=1", 200, 1.5, "15", False)
    _write(AccessLog(), "GET", "/score", 500, 0.25, "N/A", True)
    record = logging.LogRecord(
        "scoring_runtime.access", logging.INFO, __file__, 1, "POST /score?x=1 200 1.500ms 15", (), None
    )
    record.created, record.msecs = 1_790_000_000.25, 250.0
    expected = log.line_handler().format(record)  # type: ignore[union-attr]
    first, second = stdout.getvalue().splitlines()
    assert first == expected
    assert second.endswith(" I [%d] scoring_runtime.access - GET /score 500 0.250ms N/A aborted" % os.getpid())


def test_a_handler_the_script_adds_gets_the_access_lines(stdout: io.StringIO) -> None:
    seen: list[logging.LogRecord] = []
    extra = logging.Handler()
    extra.emit = seen.append  # type: ignore[method-assign]
    logging.getLogger().addHandler(extra)
    _write(AccessLog(), "POST", "/score", 200, 1.0, "2", False)
    assert [record.getMessage() for record in seen] == ["POST /score 200 1.000ms 2"]
    assert (seen[0].method, seen[0].status, seen[0].size) == ("POST", 200, 2)  # type: ignore[attr-defined]
    assert stdout.getvalue().endswith("scoring_runtime.access - POST /score 200 1.000ms 2\n")


def test_token_libraries_are_not_imported_unless_tokens_are_configured() -> None:
    # pyjwt and cryptography cost about 0.1 s of start-up; most deployments check no tokens.
    code = "import sys, scoring_runtime.serving.workers; print('jwt' in sys.modules, 'cryptography' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "False"]


def test_run_threads_hand_back_every_result_to_its_caller() -> None:
    # Results come back in batches; each caller must still get its own, and the count of jobs in flight return to 0.
    def job(value: int) -> int:
        if value % 7 == 0:
            raise ValueError(value)
        return value * 2

    async def many() -> tuple[list[object], int]:
        threads = RunThreads(2)
        threads.start()
        try:
            answers = await asyncio.gather(*(threads.submit(job, n) for n in range(2000)), return_exceptions=True)
            return list(answers), threads.outstanding
        finally:
            threads.stop()

    answers, outstanding = asyncio.run(many())
    assert outstanding == 0
    for n, answer in enumerate(answers):
        assert (str(answer) == str(n) and isinstance(answer, ValueError)) if n % 7 == 0 else answer == n * 2


@pytest.mark.slow
@pytest.mark.parametrize("preload", ["false", "true"])
def test_servers_freeze_what_init_left(serve: ServerFactory, workers: int, preload: str) -> None:
    # Full collections then skip the model and the modules: they were the slowest 1% of requests under load.
    server = serve("gc_state.py", workers=workers, env={"WORKER_PRELOAD": preload})
    state = server.post("/score", content="x").json()
    assert state["frozen"] > 10_000 and state["threshold"] == [10_000, 10, 10]


def test_numpy_and_pandas_are_not_imported_for_a_plain_script() -> None:
    # Our typed-input conversion needs them; a plain script should not pay their memory and start-up time.
    code = (
        "import sys; from scoring_runtime.config import load_settings;"
        "from scoring_runtime.contract.loading import load_script;"
        f"load_script(load_settings({{'entry_script': {str(SCRIPTS / 'raises.py')!r}}})[0]);"
        "print('numpy' in sys.modules, 'pandas' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split()[-2:] == ["False", "False"]


class _Transport:
    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[bytes, ...]]] = []

    def write(self, data: bytes) -> None:
        self.calls.append(("write", (data,)))

    def writelines(self, lines: tuple[bytes, ...]) -> None:
        self.calls.append(("writelines", tuple(lines)))

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        self.calls.append(("close", ()))


def test_a_response_head_leaves_with_its_body_in_one_write() -> None:
    async def scenario() -> list[list[tuple[str, tuple[bytes, ...]]]]:
        loop = asyncio.get_running_loop()
        seen = []
        cases = ([b"head", b"body", b"more"], False), ([b"head"], False), ([b"head"], True), ([b"head", b""], False)
        for writes, close in cases:
            transport = _Transport()
            cycle_view = HeadWithBody(transport, loop)  # type: ignore[arg-type]
            for data in writes:
                cycle_view.write(data)
            if close:
                cycle_view.close()
            await asyncio.sleep(0)  # a head with nothing after it goes out at the end of the pass
            seen.append(transport.calls)
        return seen

    assert asyncio.run(scenario()) == [
        [("writelines", (b"head", b"body")), ("write", (b"more",))],
        [("write", (b"head",))],
        [("write", (b"head",)), ("close", ())],
        [("write", (b"head",))],  # an empty body is not handed to writelines
    ]


def _read_response(sock: socket.socket) -> tuple[bytes, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(re.search(rb"content-length: (\d+)", head.lower()).group(1))  # type: ignore[union-attr]
    while len(body) < length:
        body += sock.recv(1 << 20)
    return head, body


def test_bodies_arrive_whole_however_they_are_cut(serve: ServerFactory) -> None:
    # A body of declared length is handed to run() whole: in one read, in pieces sent apart, or behind a
    # `100 Continue`; a chunked body keeps uvicorn's flow-controlled path. Every byte must come back in order.
    server = serve("raw_binary.py")
    body = random.Random(7).randbytes(3 * 1024 * 1024 + 17)
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        head = b"POST /score HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-test\r\nContent-Length: %d\r\n"
        sock.sendall(head % len(body) + b"\r\n" + body)
        assert _read_response(sock)[1] == body
        sock.sendall(head % len(body) + b"\r\n")
        for start in range(0, len(body), 700_001):
            time.sleep(0.05)
            sock.sendall(body[start : start + 700_001])
        assert _read_response(sock)[1] == body
        sock.sendall(head % len(body) + b"Expect: 100-continue\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 100 Continue")
        sock.sendall(body)
        assert _read_response(sock)[1] == body
    chunked = httpx.post(server.url + "/score", content=iter([body[:1000], body[1000:]]), timeout=30)
    assert chunked.status_code == 200 and chunked.content == body
