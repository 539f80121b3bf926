"""The parent of a single serving process (supervise.py), forked from the test itself: the serving side of each run
records itself in a file and ends at once."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from scoring_runtime.serving import supervise
from tests.helpers import SCRIPTS


def _served(record: Path, plan: list[str]) -> None:
    """In the serving process: do what the plan says for this start, then end without running pytest's teardown."""
    starts = len(record.read_text().splitlines()) if record.exists() else 0
    with record.open("a") as lines:
        lines.write(f"{os.getpid()} {os.environ[supervise.SUPERVISED_ENV]} {os.getpgid(0)}\n")
    step = plan[min(starts, len(plan) - 1)]
    if step != "never ready":
        supervise.ready()
    if step == "stop the parent":
        os.kill(os.getppid(), signal.SIGTERM)
        signal.pause()  # until the parent forwards it: the default action ends this process
    os._exit({"crash": 1, "never ready": 3}.get(step, 0))


def _supervise(served: Callable[[], None]) -> int:
    """supervise() from the test: `served` runs in each serving process, which never returns into pytest."""
    status = supervise.supervise()
    if status is None:
        try:
            served()
        finally:
            os._exit(99)
    return status


@pytest.fixture(autouse=True)
def quick(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(supervise, "MAX_BACKOFF_S", 0.05)
    monkeypatch.delenv(supervise.SUPERVISED_ENV, raising=False)


def test_a_process_that_dies_after_it_was_ready_is_started_again_until_the_parent_is_stopped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    record = tmp_path / "starts"
    before = {signum: signal.getsignal(signum) for signum in supervise.FORWARDED}
    with caplog.at_level(logging.ERROR, "azmlinfsrv"):
        status = _supervise(lambda: _served(record, ["crash", "crash", "stop the parent"]))
    assert status == 128 + signal.SIGTERM  # the serving process ended by the forwarded signal
    starts = [line.split() for line in record.read_text().splitlines()]
    assert len(starts) == 3 and len({pid for pid, _, _ in starts}) == 3
    # Each was told who supervises it, and led a process group of its own.
    assert all(parent == str(os.getpid()) and group == pid for pid, parent, group in starts)
    assert caplog.text.count("The serving process stopped unexpectedly (exit status 1); starting a new one") == 2
    assert {signum: signal.getsignal(signum) for signum in supervise.FORWARDED} == before
    assert supervise.SUPERVISED_ENV not in os.environ


def test_a_process_that_never_became_ready_ends_the_parent_with_its_status(tmp_path: Path) -> None:
    record = tmp_path / "starts"
    assert _supervise(lambda: _served(record, ["never ready"])) == 3
    assert len(record.read_text().splitlines()) == 1


def test_a_process_killed_by_a_signal_is_reported_by_name(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    record = tmp_path / "starts"
    plan = ["kill itself", "stop the parent"]

    def served(record: Path, plan: list[str]) -> None:
        starts = len(record.read_text().splitlines()) if record.exists() else 0
        if starts == 0:
            with record.open("a") as lines:
                lines.write("first\n")
            supervise.ready()
            os.kill(os.getpid(), signal.SIGKILL)
        _served(record, plan[1:])

    with caplog.at_level(logging.ERROR, "azmlinfsrv"):
        status = _supervise(lambda: served(record, plan))
    assert status == 128 + signal.SIGTERM
    assert len(record.read_text().splitlines()) == 2
    assert "stopped unexpectedly (signal SIGKILL); starting a new one" in caplog.text


def test_ready_outside_a_supervised_process_does_nothing() -> None:
    supervise.ready()
    assert not supervise.supervised()


def test_a_port_in_use_is_found_before_anything_is_forked(tmp_path: Path) -> None:
    taken = supervise.bind("127.0.0.1", 0)
    try:
        with pytest.raises(OSError):
            supervise.bind("127.0.0.1", taken.getsockname()[1])
    finally:
        taken.close()


def test_a_process_that_dies_unready_is_seen_at_once_though_its_own_child_holds_the_pipe(tmp_path: Path) -> None:
    """init() may fork (a multiprocessing pool): such a process keeps the readiness pipe open after its parent died."""

    def served() -> None:
        if os.fork() == 0:
            time.sleep(3)
            os._exit(0)
        os._exit(3)

    started = time.monotonic()
    status = _supervise(served)
    assert status == 3 and time.monotonic() - started < 2


@pytest.mark.slow
def test_a_port_in_use_stops_start_up_with_its_address() -> None:
    taken = supervise.bind("127.0.0.1", 0)
    port = taken.getsockname()[1]
    try:
        command = [sys.executable, "-m", "scoring_runtime", "--host", "127.0.0.1", "--port", str(port)]
        command += ["--entry_script", str(SCRIPTS / "raw_echo.py")]
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    finally:
        taken.close()
    assert done.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}: [Errno 98] Address already in use" in done.stderr
