"""The server being profiled: started here with the user's flags (or already running at --url), waited for until
/ready answers 200, and stopped with SIGTERM, then SIGKILL."""

from __future__ import annotations

import http.client
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from scoring_runtime.profiling.errors import ProfileError

STOP_GRACE_S = 5.0
_POLL_S = 0.1
# A traceback's last line (`RuntimeError: model file is corrupt`), the line that says why init() failed.
_EXCEPTION = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt|Warning)\b")
_LOG_ERROR = re.compile(r"^\S+ \S+ E \[\d+\] ")  # the server's own error lines (`... E [pid] logger - message`)


@dataclass
class Target:
    """What is profiled: its base URL, the process whose tree is sampled (None: not measured), and how it started."""

    url: str
    pid: int | None
    command: list[str] | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    log_path: Path | None = None
    _log: IO[bytes] | None = field(default=None, repr=False)

    def stop(self) -> None:
        """End a server started here: SIGTERM to its process group (its workers too), SIGKILL after a grace."""
        if self.process is None:
            return
        try:
            if self.process.poll() is None:
                os.killpg(self.process.pid, signal.SIGTERM)
                try:
                    self.process.wait(STOP_GRACE_S)
                except subprocess.TimeoutExpired:
                    os.killpg(self.process.pid, signal.SIGKILL)
                    self.process.wait(STOP_GRACE_S)
            # Workers of a server killed by its parent's death would keep the group alive: none outlive the profile.
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        finally:
            if self._log is not None:
                self._log.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_command(server_args: Sequence[str], port: int) -> list[str]:
    # Ours last: argparse keeps the last value, so a --host or --port among the user's flags cannot send the load
    # elsewhere than the loopback port chosen here.
    return [sys.executable, "-m", "scoring_runtime", *server_args, "--host", "127.0.0.1", "--port", str(port)]


def spawn(server_args: Sequence[str], log_path: Path) -> Target:
    """Start the server on a free loopback port, its output to `log_path`; wait_ready() says when it serves."""
    port = free_port()
    command = server_command(server_args, port)
    log = log_path.open("wb")
    # A session of its own: Ctrl-C in the terminal reaches the profiler, which stops the server in order, and the
    # server's gunicorn workers are ended with it by their group.
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    return Target(f"http://127.0.0.1:{port}", process.pid, command, process, log_path, log)


def attach(url: str, pid: int | None, timeout_s: float) -> Target:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise ProfileError(f"--url {url}: give the server's base URL, such as http://127.0.0.1:5001")
    if pid is not None and not _exists(pid):
        raise ProfileError(f"--pid {pid}: no such process")
    target = Target(url.rstrip("/"), pid)
    wait_ready(target, timeout_s)
    return target


def wait_ready(target: Target, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        if target.process is not None and target.process.poll() is not None:
            raise ProfileError(
                f"the server exited with status {target.process.returncode} before it was ready: "
                f"{last_error_line(_read(target.log_path))} (its log: {target.log_path})"
            )
        status = ready_status(target.url)
        if status == 200:
            return
        if time.monotonic() >= deadline:
            break
        time.sleep(_POLL_S)
    if target.process is None:
        said = f"answered {status}" if status is not None else "did not answer"
        raise ProfileError(f"{target.url}/ready {said} within {timeout_s:g} s (--startup-timeout)")
    raise ProfileError(
        f"the server was not ready within {timeout_s:g} s (--startup-timeout); its last log line: "
        f"{last_line(_read(target.log_path))} (its log: {target.log_path})"
    )


def ready_status(url: str) -> int | None:
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=2.0)
    try:
        connection.request("GET", parts.path.rstrip("/") + "/ready")
        return connection.getresponse().status
    except OSError:
        return None
    finally:
        connection.close()


def last_error_line(log: str) -> str:
    """What says best why a server stopped: a traceback's exception line, else its last error line, else its last
    line."""
    lines = [line.rstrip() for line in log.splitlines() if line.strip()]
    for line in reversed(lines):
        if _EXCEPTION.match(line):
            return line
    for line in reversed(lines):
        if _LOG_ERROR.match(line):
            return line
    return last_line(log)


def last_line(log: str) -> str:
    lines = [line.rstrip() for line in log.splitlines() if line.strip()]
    return lines[-1] if lines else "(it wrote nothing)"


def _read(path: Path | None) -> str:
    try:
        return path.read_text(errors="replace") if path is not None else ""
    except OSError:
        return ""


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
