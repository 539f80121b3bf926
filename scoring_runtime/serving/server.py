"""One worker's server: uvicorn's, told about draining, accepting through BalancedAcceptor, tuning its process."""

from __future__ import annotations

import functools
import logging
import signal
import socket
import time
from types import FrameType
from typing import Protocol

import uvicorn

from scoring_runtime.app import ScoringApp
from scoring_runtime.auth import Authenticator
from scoring_runtime.config import Settings
from scoring_runtime.errors import STARTUP_FAILURE_EXIT
from scoring_runtime.serving.accept import BalancedAcceptor, Shares
from scoring_runtime.serving.http import protocol_class
from scoring_runtime.serving.http.compat import internals_fit
from scoring_runtime.serving.process import IdleTrim, keep_freed_memory, settle_garbage_collector
from scoring_runtime.serving.replace import Watchdog, execute_again, inherited_sockets, keep_sockets
from scoring_runtime.serving.supervise import binds, ready

logger = logging.getLogger("azmlinfsrv")


class Drains(Protocol):
    """What the server needs of the app it serves (ScoringApp's methods of the same names)."""

    def begin_draining(self) -> bool: ...

    def stop_stuck_runs(self, limit_s: int) -> int: ...

    def too_many_abandoned(self, replacement: str) -> bool: ...


class DrainingServer(uvicorn.Server):
    """uvicorn's server, which also tells the app it is draining as soon as a shutdown signal arrives, and tunes the
    worker's process once init() has run (the garbage collector and the heap policy, see process.py).

    Once the app is ready it accepts connections through BalancedAcceptor (accept.py), a burst in one pass, rather
    than through uvloop's server, one per pass. Under gunicorn, `shares` and `slot` also spread connections evenly
    over the workers.
    """

    _idle_trim: IdleTrim | None = None

    def __init__(
        self,
        config: uvicorn.Config,
        app: Drains,
        heap_keep_mb: int = 0,
        shares: Shares | None = None,
        slot: int | None = None,
        stuck_after_s: int | None = None,
        replace_in_place: bool = False,
    ) -> None:
        super().__init__(config=config)
        self._app = app
        # One worker, with no arbiter to replace this process: run() calls past WORKER_TIMEOUT are stopped here, the
        # process replaces itself (`replace_in_place`) when too many abandoned threads are stuck, and a watchdog
        # exits it if the event loop stops for WORKER_TIMEOUT (see replace.py).
        self._stuck_after_s = stuck_after_s
        self._replace_in_place = replace_in_place
        self._watchdog = Watchdog(stuck_after_s) if stuck_after_s else None
        self._listening: list[socket.socket] = []
        # Set when this process is to be replaced: the duplicates of its listening sockets for its successor.
        self.successor_fds: list[int] | None = None
        self._heap_keep_mb = heap_keep_mb
        self._shares = shares
        self._slot = slot
        self._acceptors: list[BalancedAcceptor] = []

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        if sockets is None:
            sockets = [self.config.bind_socket()]
        self._listening = sockets
        for sock in sockets:
            # uvicorn's bind_socket leaves listening to create_server; a socket gunicorn hands over already listens.
            if not sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
                sock.listen(self.config.backlog)
        if not internals_fit():
            await super().startup(sockets=sockets)  # uvicorn's own listening, one connection per loop pass
            self._tune_process()
            if self.started:
                ready()
            return
        # uvicorn's start-up (the lifespan, init()) without listening.
        await super().startup(sockets=[])
        if not self.started:
            for sock in sockets:
                sock.close()
            return
        self._tune_process()
        ready()
        config, state = self.config, self.server_state
        factory = functools.partial(
            config.http_protocol_class,
            config=config,
            server_state=state,  # type: ignore[call-arg]
            app_state=self.lifespan.state,
        )
        self._acceptors = [
            BalancedAcceptor(sock, factory, state.connections, self._shares, self._slot) for sock in sockets
        ]
        self.servers = self._acceptors  # type: ignore[assignment]  # what uvicorn's shutdown closes

    def _tune_process(self) -> None:
        """This process serves only this app: process-wide tuning is ours to do, once init() has run."""
        if not self.started:
            return
        settle_garbage_collector()
        if keep_freed_memory(self._heap_keep_mb):
            self._idle_trim = IdleTrim()

    def publish_connections(self) -> None:
        for acceptor in self._acceptors:
            acceptor.publish()

    async def on_tick(self, counter: int) -> bool:
        if counter % 10 == 0:  # ticks come every 0.1 s
            if self._idle_trim is not None:
                self._idle_trim.tick(self.server_state.total_requests, time.monotonic())
            if self._stuck_after_s and self.started:
                self._stop_stuck_runs(self._stuck_after_s)
            if self._watchdog is not None and self.started and not self.should_exit:
                self._watchdog.beat()
            if self._replace_in_place and self.started and not self.should_exit:
                if self._app.too_many_abandoned("replacing this process"):
                    self.successor_fds = keep_sockets(self._listening)
                    self.drain()
        return await super().on_tick(counter)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if self._watchdog is not None:
            self._watchdog.stop()  # a long drain is not a frozen loop
        await super().shutdown(sockets=sockets)

    def _stop_stuck_runs(self, limit_s: int) -> None:
        stuck = self._app.stop_stuck_runs(limit_s)
        if stuck:
            logger.error("%d run() call(s) still running after WORKER_TIMEOUT (%d s): stopped", stuck, limit_s)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self._mark_draining()
        super().handle_exit(sig, frame)

    def drain(self) -> None:
        """Stop as on SIGTERM, without a signal (which uvicorn would raise again once it has stopped)."""
        self._mark_draining()
        self.should_exit = True

    def _mark_draining(self) -> None:
        if self._app.begin_draining():
            logger.info(
                "Draining: /ready answers 503; in-flight requests get up to %ss", self.config.timeout_graceful_shutdown
            )


def run_uvicorn(settings: Settings, auth: Authenticator) -> int:
    """Serve from this process until stopped; the exit status."""
    internals_fit()  # checked (and any fallback logged) before the event loop starts
    app = ScoringApp(settings, authenticator=auth)
    configs = [
        uvicorn.Config(
            app,
            host=host,
            port=port,
            lifespan="on",
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=settings.graceful_timeout_s,
            http=protocol_class(settings),
        )
        for host, port in binds(settings)
    ]
    server = DrainingServer(
        configs[0],
        app,
        settings.heap_keep_mb,
        stuck_after_s=settings.worker_timeout,
        replace_in_place=True,
    )
    sockets = inherited_sockets(len(configs)) or [config.bind_socket() for config in configs]
    # Once drained, uvicorn raises the signal that stopped it again, under the handler that was there before it
    # started. A SIGTERM that drained cleanly is a clean exit (status 0), as orchestrators expect; so is a SIGINT,
    # which under asyncio's runner would otherwise end a finished shutdown in a KeyboardInterrupt traceback (seen
    # with Debian 12's Python 3.11.2, as PID 1 of our image).
    stopping = (signal.SIGTERM, signal.SIGINT)
    previous = {signum: signal.signal(signum, lambda signum, frame: None) for signum in stopping}
    try:
        server.run(sockets=sockets)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if server.successor_fds is not None:
        execute_again(server.successor_fds)
    return 0 if server.started else STARTUP_FAILURE_EXIT
