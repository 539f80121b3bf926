"""Starting real scoring_runtime servers as subprocesses on free loopback ports, and stopping them."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "tests" / "scripts"
SAMPLES = ROOT / "sample_models"


# For a server started with an Application Insights key: its exports go to a closed local port, never to Azure.
NO_TELEMETRY_EXPORT = {
    "APPLICATIONINSIGHTS_CONNECTION_STRING": (
        "InstrumentationKey=01234567-89ab-cdef-0123-456789abcdef;IngestionEndpoint=http://127.0.0.1:9/"
    ),
    "SCORING_APP_INSIGHTS_OFFLINE_STORAGE": "false",
    "APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL": "true",
    "APPLICATIONINSIGHTS_CONTROLPLANE_DISABLED": "true",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def read_response(sock: socket.socket) -> tuple[bytes, bytes]:
    """One whole response with a Content-Length from a kept-alive connection: its head and its body. The two may
    arrive apart (uvicorn's own protocol writes them separately), and a body left unread would be taken for the
    start of the next answer."""
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = sock.recv(65536)
        assert chunk, f"closed after {received!r}"
        received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    length = next(int(line.split(b":", 1)[1]) for line in lines if line.lower().startswith(b"content-length:"))
    while len(body) < length:
        chunk = sock.recv(1 << 20)
        assert chunk, f"closed after {head + body!r}"
        body += chunk
    return head, body


def wait_answering(
    process: subprocess.Popen[bytes], url: str, log: Callable[[], str], timeout: float, what: str, pause: float = 0.05
) -> None:
    """Until a GET of `url` answers 200. The process exiting first, or the timeout, is an error that shows its log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}:\n{log()}")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(pause)
    raise TimeoutError(f"{what} not ready after {timeout}s:\n{log()}")


def clean_env(**extra: str) -> dict[str, str]:
    """The test process's environment without any setting scoring_runtime reads, plus `extra`."""
    from scoring_runtime.config import ENV_NAMES
    from scoring_runtime.cpus import THREAD_VARIABLES

    read = {*ENV_NAMES, *THREAD_VARIABLES, "SEPERATE_HEALTH_ENDPOINT"}
    env = {k: v for k, v in os.environ.items() if k not in read}
    env.update(extra)
    return env


# The test being set up or run (conftest.py keeps it current): a test that starts a server must be marked slow, so
# that `pytest -m "not slow"` is the fast in-process suite.
current_test: pytest.Item | None = None


def require_slow_marker() -> None:
    if current_test is not None and current_test.get_closest_marker("slow") is None:
        raise RuntimeError(f"{current_test.nodeid} starts a server process: mark it @pytest.mark.slow")


class Server:
    """One `python -m scoring_runtime` process; its output goes to a log file the test can read."""

    def __init__(self, *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, log_dir: Path) -> None:
        require_slow_marker()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_dir / f"server-{self.port}.log"
        command = [sys.executable, "-m", "scoring_runtime", "--host", "127.0.0.1", "--port", str(self.port), *args]
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            command,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=clean_env() if env is None else env,
            cwd=cwd or ROOT,
            start_new_session=True,
        )

    def wait_ready(self, timeout: float = 60.0) -> Server:
        wait_answering(self.process, self.url + "/", self.log, timeout, "server")
        return self

    def wait_exit(self, timeout: float = 60.0) -> int:
        try:
            return self.process.wait(timeout)
        finally:
            self._log.close()

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.get(self.url + path, timeout=30.0, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.post(self.url + path, timeout=30.0, **kwargs)

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.request(method, self.url + path, timeout=30.0, **kwargs)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, text: str, timeout: float = 20.0) -> str:
        """The log once it contains `text` (or at the timeout): access lines are written just after the response."""
        deadline = time.monotonic() + timeout
        log = self.log()
        while text not in log and time.monotonic() < deadline:
            time.sleep(0.05)
            log = self.log()
        return log

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
            except ProcessLookupError:
                pass
        self._log.close()
