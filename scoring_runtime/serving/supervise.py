"""One worker with WORKER_TIMEOUT: a parent process that starts the serving process again when it dies.

With several workers, gunicorn's arbiter replaces a worker that dies. With one, a process whose event loop stops (a
run() holding the GIL in C) can only be ended, by faulthandler's watchdog (replace.py), and a run() crashing in C
ends it too: without a parent to start it again, the service is down until the orchestrator notices, and on a laptop
for good. So with WORKER_TIMEOUT set, the process that binds the sockets forks the serving process and waits. It
forwards the stop signals; when the serving process ends by itself after it had become ready, it logs why and forks
a new one on the same sockets, whose backlog holds the connections that arrive meanwhile. A serving process that never
became ready (init() failed) ends the parent too, with its exit status.

The parent is forked from as early as the settings are known (`serve_single_worker`, before the server stack is
imported): it holds the sockets, the settings and logging, about 13 MB, and never loads the script.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import socket
import sys
import time
from types import FrameType
from typing import Any

from scoring_runtime.config import Settings
from scoring_runtime.observability.log import configure_logging
from scoring_runtime.serving.replace import INHERITED_ENV

logger = logging.getLogger("azmlinfsrv")

# Set in the serving process, and kept across its re-execution (replace.py): it is supervised already.
SUPERVISED_ENV = "SCORING_SUPERVISED"
FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
# A serving process that dies sooner than this after it was forked counts towards the back-off before the next one.
QUICK_DEATH_S = 10.0
MAX_BACKOFF_S = 30.0
# uvicorn's default, which the serving process would listen with.
BACKLOG = 2048
# prctl's option: the signal this process gets when its parent dies.
PR_SET_PDEATHSIG = 1

# The serving process's end of the pipe it says "ready" through.
_ready_fd: int | None = None


def supervised() -> bool:
    return SUPERVISED_ENV in os.environ


def binds(settings: Settings) -> list[tuple[str, int]]:
    """The addresses to listen on: the scoring port, and the health port when it is another one."""
    found = [(settings.host, settings.port)]
    if settings.health_port is not None and settings.health_port != settings.port:
        found.append((settings.host, settings.health_port))
    return found


def serve_single_worker(settings: Settings) -> int | None:
    """With one worker and WORKER_TIMEOUT, bind the sockets here and become the serving process's parent: None in the
    serving process (and whenever there is nothing to supervise), the exit status in the parent."""
    if settings.worker_count != 1 or not settings.worker_timeout or supervised():
        return None
    sockets: list[socket.socket] = []
    for host, port in binds(settings):
        try:
            sockets.append(bind(host, port))
        except OSError as error:
            print(f"scoring-runtime: cannot listen on {host}:{port}: {error}", file=sys.stderr)
            for sock in sockets:
                sock.close()
            return 1
    # The serving process takes them as a replaced process takes its predecessor's (replace.py).
    os.environ[INHERITED_ENV] = ",".join(str(sock.fileno()) for sock in sockets)
    configure_logging(settings.log_level, (), settings.log_format)  # for the parent's own lines
    status = supervise()
    for sock in sockets:
        if status is None:
            sock.detach()  # the serving process's now, by number: not closed with this object
        else:
            sock.close()
    return status


def bind(host: str, port: int) -> socket.socket:
    """A TCP socket bound as uvicorn binds one, and listening at once, as the serving process would: a second server
    started on the same port fails here, rather than both binding (SO_REUSEADDR) and racing to listen."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(BACKLOG)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def ready() -> None:
    """Called by the serving process once init() has run: from now on its death is a reason to start another."""
    global _ready_fd
    if _ready_fd is not None:
        fd, _ready_fd = _ready_fd, None
        try:
            os.write(fd, b"r")
        finally:
            os.close(fd)


def supervise() -> int | None:
    """Fork the serving process, and start it again whenever it dies by itself after becoming ready. Returns None in
    the serving process (which goes on to serve), and the exit status to end with in the parent."""
    stop: list[int] = []
    child = 0

    def forward(signum: int, frame: FrameType | None) -> None:
        stop.append(signum)
        if child:
            try:
                os.kill(child, signum)
            except ProcessLookupError:
                pass

    previous: dict[signal.Signals, Any] = {signum: signal.signal(signum, forward) for signum in FORWARDED}
    quick_deaths = 0
    try:
        while True:
            read_end, write_end = os.pipe()
            forked = time.monotonic()
            child = os.fork()
            if child == 0:
                _become_served(read_end, write_end, previous)
                previous = {}  # the serving process's handlers are its own from here
                return None
            os.close(write_end)
            if stop:  # a signal that came before `child` was set, and so was not forwarded
                os.kill(child, stop[-1])
            status = _wait(child)
            child = 0
            was_ready = _said_ready(read_end)
            code = os.waitstatus_to_exitcode(status)
            if stop or not was_ready:
                return code if code >= 0 else 128 - code
            quick_deaths = quick_deaths + 1 if time.monotonic() - forked < QUICK_DEATH_S else 0
            backoff = min(2.0 ** (quick_deaths - 1), MAX_BACKOFF_S) if quick_deaths else 0.0
            how = f"exit status {code}" if code >= 0 else f"signal {signal.Signals(-code).name}"
            logger.error("The serving process stopped unexpectedly (%s); starting a new one", how)
            deadline = time.monotonic() + backoff
            while not stop and time.monotonic() < deadline:
                time.sleep(min(0.1, backoff))
            if stop:
                return 0
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _become_served(read_end: int, write_end: int, previous: dict[signal.Signals, Any]) -> None:
    global _ready_fd
    os.close(read_end)
    _ready_fd = write_end
    parent = os.getppid()
    os.environ[SUPERVISED_ENV] = str(parent)
    for signum, handler in previous.items():
        signal.signal(signum, handler)
    # A process group of its own: a signal sent to the parent's group (a terminal's Ctrl+C, `kill -- -pgid`) reaches
    # it once, forwarded, rather than twice, which uvicorn would take for "stop now, without draining". It must then
    # not outlive the parent: the parent's death is a SIGTERM to it (Linux).
    os.setpgid(0, 0)
    _terminate_with_parent()
    if os.getppid() != parent:  # the parent died before that was asked for
        os.kill(os.getpid(), signal.SIGTERM)


def _terminate_with_parent() -> None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):  # not Linux: a parent killed hard leaves the serving process running
        return
    if prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        logger.warning(
            "The serving process will not be stopped with its parent: prctl failed (errno %d)", ctypes.get_errno()
        )


def _said_ready(read_end: int) -> bool:
    """Whether the serving process wrote "ready" before it died. Not blocking: a process it forked (a multiprocessing
    pool started in init()) may still hold the pipe's other end."""
    os.set_blocking(read_end, False)
    try:
        return os.read(read_end, 1) == b"r"
    except BlockingIOError:
        return False
    finally:
        os.close(read_end)


def _wait(child: int) -> int:
    """The child's wait status. waitpid is retried after each signal (PEP 475), which `forward` has passed on."""
    while True:
        pid, status = os.waitpid(child, 0)
        if pid == child:
            return status
