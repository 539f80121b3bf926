"""How connections are accepted: a burst in one pass of the event loop, and spread evenly over gunicorn's workers.

uvloop accepts one pending connection per pass of its event loop. Under load a pass lasts milliseconds, so the last
of a client's pool of 64 new connections waited 100 ms and more before its first byte was read; an acceptor here takes
up to ACCEPT_BATCH at once.

Under gunicorn every worker listens on the one socket the master opened, and the kernel wakes them all when a
connection comes. Left to uvloop, a burst of new connections (a client's connection pool, a load balancer after a
deploy) lands unevenly, 51 to 13 on two workers in our measurements, and keep-alive keeps it so: one worker's clients
wait four times as long as the other's, and their p99 is what a user sees. Here a worker accepts its fair share of
what is there: the connections the workers hold plus those waiting in the kernel's queue (which Linux reports for a
listening socket), split evenly over the live workers; and otherwise only while it holds at most SLACK connections
more than the least loaded other live worker. The counts live in memory the master maps before forking the workers.
A connection every other worker leaves waiting (one that is stopped, or stuck holding the GIL) is taken after
ACCEPT_WAIT_S all the same, so a stuck worker never stops the rest from accepting.
"""

from __future__ import annotations

import asyncio
import logging
import mmap
import select
import socket
import struct
from collections.abc import Callable, Sized
from typing import Protocol, runtime_checkable

logger = logging.getLogger("azmlinfsrv")

# Live workers at once, replacements being started included; beyond that a worker accepts without balancing.
SLOTS = 256
FREE = -1
# A worker that is not accepting (still starting, or draining): the others do not wait for it.
CLOSED = 1 << 62
# How many connections more than the least loaded other worker a worker may hold and still accept, beyond its share
# of what is waiting: where the kernel does not say how many wait (not a TCP socket), a burst is still taken a few at
# a time by each worker rather than strictly one by one in turn.
SLACK = 2
# Connections accepted in one go, before the loop serves anything else: a share of a client's whole pool at once.
# Taking a burst of 64 a few at a time, each worker waiting for the other's turn on a shared core, kept the last of
# them in the kernel's queue for 51 ms; taking shares, both workers hold theirs within one turn each.
ACCEPT_BATCH = 64
# How long a worker leaves a connection to a less loaded worker before taking it itself.
ACCEPT_WAIT_S = 0.05
# How soon a worker that left a connection to others looks at the socket again.
RECHECK_S = 0.002


@runtime_checkable
class NotifiesClose(Protocol):
    """A connection's protocol that calls `on_closed` once it has closed (ours does: protocol.py)."""

    on_closed: Callable[[], None] | None


class Shares:
    """The connection count of every live worker (FREE for an unused slot), in memory shared across forks."""

    def __init__(self) -> None:
        # Anonymous and MAP_SHARED: the forked workers see one copy. One word more than the slots: how many slots have
        # ever been claimed, so that a worker looks through those only.
        self._memory = mmap.mmap(-1, (SLOTS + 1) * 8)
        words = memoryview(self._memory).cast("q")
        self.counts = words[:SLOTS]
        self._used = words[SLOTS:]
        for slot in range(SLOTS):
            self.counts[slot] = FREE
        self._used[0] = 0

    def claim(self) -> int | None:
        """In the master, before forking a worker: a free slot for it, or None if there is none."""
        for slot in range(SLOTS):
            if self.counts[slot] == FREE:
                self.counts[slot] = CLOSED  # until its acceptor starts, after init()
                self._used[0] = max(self._used[0], slot + 1)
                return slot
        return None

    def release(self, slot: int | None) -> None:
        """In the master, once the worker has exited."""
        if slot is not None:
            self.counts[slot] = FREE

    def others(self, slot: int) -> tuple[int, int, int] | None:
        """Over the other live accepting workers: the least count, the sum of counts, and how many there are; None
        if there is none."""
        least = CLOSED
        held = live = 0
        counts = self.counts
        for index in range(self._used[0]):
            count = counts[index]
            if index != slot and FREE != count != CLOSED:
                least = min(least, count)
                held += count
                live += 1
        return (least, held, live) if live else None


class BalancedAcceptor:
    """Accepts from one listening socket into `factory`'s protocols; uvicorn's shutdown calls `close`."""

    def __init__(
        self,
        sock: socket.socket,
        factory: Callable[[], asyncio.Protocol],
        connections: Sized,
        shares: Shares | None,
        slot: int | None,
    ) -> None:
        self._sock = sock
        self._factory = factory
        self._connections = connections
        # Where this worker's count goes, among the others': none when serving alone (or with no slot left).
        self._shares = shares if slot is not None else None
        self._slot = slot if slot is not None else 0
        self._loop = asyncio.get_running_loop()
        self._waiting_since: float | None = None
        self._closed = False
        self._starting: set[asyncio.Task[object]] = set()
        sock.setblocking(False)
        self.publish()
        self._loop.add_reader(sock.fileno(), self._readable)

    def publish(self) -> None:
        """Make this worker's count current for the others (connections also close between accepts)."""
        if self._shares is not None and not self._closed:
            self._shares.counts[self._slot] = len(self._connections)

    def _readable(self) -> None:
        for _ in range(ACCEPT_BATCH):
            mine = len(self._connections) + len(self._starting)
            shares = self._shares
            if shares is not None:
                shares.counts[self._slot] = mine
                others = shares.others(self._slot)
                if others is not None and not _my_turn(mine, others, self._sock):
                    now = self._loop.time()
                    if self._waiting_since is None:
                        self._waiting_since = now
                    if now - self._waiting_since < ACCEPT_WAIT_S:
                        self._look_again_later()
                        return
            self._waiting_since = None
            try:
                conn, _ = self._sock.accept()
            except (BlockingIOError, InterruptedError):
                return  # nothing left, or another worker took it
            except OSError as exc:
                # Out of file descriptors, say: the connection stays queued; try again shortly rather than spin.
                logger.warning("Could not accept a connection: %s", exc)
                self._look_again_later()
                return
            conn.setblocking(False)
            if shares is not None:
                shares.counts[self._slot] = mine + 1
            task = self._loop.create_task(self._loop.connect_accepted_socket(self._protocol, conn))
            self._starting.add(task)
            task.add_done_callback(self._started)

    def _protocol(self) -> asyncio.Protocol:
        protocol = self._factory()
        if self._shares is not None and isinstance(protocol, NotifiesClose):
            protocol.on_closed = self.publish
        return protocol

    def _started(self, task: asyncio.Task[object]) -> None:
        self._starting.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.warning("Could not start serving a connection: %s", task.exception())

    def _look_again_later(self) -> None:
        self._loop.remove_reader(self._sock.fileno())
        self._loop.call_later(RECHECK_S, self._resume)

    def _resume(self) -> None:
        if self._closed:
            return
        if not select.select([self._sock], [], [], 0)[0]:
            # Another worker took what was waiting: a later connection starts a wait of its own.
            self._waiting_since = None
        self._loop.add_reader(self._sock.fileno(), self._readable)

    def close(self) -> None:
        """Stop accepting, and close this process's copy of the listening socket (as uvloop's server does): a
        connection that comes while the worker drains is refused, or taken by another worker, not left queued."""
        if not self._closed:
            self._closed = True
            self._loop.remove_reader(self._sock.fileno())
            self._sock.close()
            if self._shares is not None:
                self._shares.counts[self._slot] = CLOSED

    async def wait_closed(self) -> None:
        pass


def _my_turn(mine: int, others: tuple[int, int, int], sock: socket.socket) -> bool:
    least, held, live = others
    if mine <= least + SLACK:
        return True  # without asking the kernel: most accepts end here
    # Below an even split of every connection there is, held or waiting.
    waiting = waiting_connections(sock)
    return waiting is not None and mine * (live + 1) < mine + held + waiting


_TCP_INFO = getattr(socket, "TCP_INFO", None)
_TCP_LISTEN = 10


def waiting_connections(sock: socket.socket) -> int | None:
    """How many connections wait in a listening TCP socket's accept queue, or None where the kernel does not say.

    For a listening socket, Linux reports the queue's length in tcp_info's `tcpi_unacked` (as `ss` shows it).
    """
    if _TCP_INFO is None:
        return None
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, _TCP_INFO, 32)
    except OSError:
        return None  # a Unix socket, say
    if len(info) < 28 or info[0] != _TCP_LISTEN:
        return None
    return int(struct.unpack_from("=I", info, 24)[0])
