"""Replacing a single-process server in place, and the watchdog for an event loop that stops.

With several workers, gunicorn's arbiter replaces a worker that must go. With one there is no arbiter, so the process
replaces itself: it keeps duplicates of its listening sockets, drains, and executes itself again. The process id stays
(a container's PID 1 stays PID 1), connections that arrive meanwhile wait in the sockets' backlog, and the new
interpreter serves from the same sockets once init() has run.

An event loop that stops altogether (a run() holding the GIL in C) can do none of this: only a thread that needs no
GIL can act. faulthandler's watchdog is one: re-armed every second from the loop, it dumps every thread's traceback
and exits the process if the loop has not re-armed it within WORKER_TIMEOUT, so that the orchestrator restarts it
instead of probes timing out against a frozen process.
"""

from __future__ import annotations

import faulthandler
import logging
import os
import socket
import sys
from typing import NoReturn

logger = logging.getLogger("azmlinfsrv")

# The listening sockets a replaced process hands to its successor: file descriptors, in the order of `binds`.
INHERITED_ENV = "SCORING_INHERITED_FDS"


def inherited_sockets(count: int) -> list[socket.socket] | None:
    """The listening sockets a predecessor left, when this process is its replacement; None otherwise."""
    raw = os.environ.pop(INHERITED_ENV, "")
    if not raw:
        return None
    try:
        fds = [int(part) for part in raw.split(",")]
    except ValueError:
        logger.warning("Ignoring %s=%r: not a list of file descriptors", INHERITED_ENV, raw)
        return None
    if len(fds) != count:
        logger.warning("Ignoring %s=%r: %d sockets expected", INHERITED_ENV, raw, count)
        for fd in fds:
            _close(fd)
        return None
    return [socket.socket(fileno=fd) for fd in fds]


def keep_sockets(sockets: list[socket.socket]) -> list[int]:
    """Inheritable duplicates of `sockets`: they keep the sockets listening while the server closes its own."""
    kept = []
    for sock in sockets:
        fd = os.dup(sock.fileno())
        os.set_inheritable(fd, True)
        kept.append(fd)
    return kept


def execute_again(kept: list[int]) -> NoReturn:
    """Replace this process's program with a fresh start of the same command line, handing over `kept`."""
    os.environ[INHERITED_ENV] = ",".join(str(fd) for fd in kept)
    for handler in logging.getLogger().handlers:
        handler.flush()
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])


def _close(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass


class Watchdog:
    """faulthandler's timer, pushed back on every beat: it fires only when the beats stop for `timeout_s`."""

    def __init__(self, timeout_s: int) -> None:
        self.timeout_s = timeout_s
        self.armed = False

    def beat(self) -> None:
        # Beats come once a second: one second more, so that a loop that is merely between beats is never taken
        # for a stopped one.
        faulthandler.dump_traceback_later(self.timeout_s + 1, repeat=False, file=sys.stderr, exit=True)
        self.armed = True

    def stop(self) -> None:
        if self.armed:
            faulthandler.cancel_dump_traceback_later()
            self.armed = False
