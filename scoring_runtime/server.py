"""Serving: uvicorn in this process for one worker, gunicorn with uvicorn workers for several."""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import signal
import socket
import time
from types import FrameType
from typing import Any

import uvicorn

from scoring_runtime import __version__
from scoring_runtime.accept_balance import BalancedAcceptor, Shares
from scoring_runtime.app import ScoringApp, finish_async_init, load_user_script, settle_garbage_collector
from scoring_runtime.auth import Authenticator, authenticator as build_authenticator
from scoring_runtime.config import Settings
from scoring_runtime.errors import StartupError
from scoring_runtime.heap import IdleTrim, keep_freed_memory
from scoring_runtime.http_protocol import protocol_class
from scoring_runtime.log import configure_logging, install_print_hook
from scoring_runtime.metrics import multiprocess_directory
from scoring_runtime.user_script import UserScript, run_init

logger = logging.getLogger("scoring_runtime")

STARTUP_FAILURE = 3


def run(settings: Settings, warnings: list[str] | None = None) -> int:
    """Serve until stopped; return the process exit code. A ConfigError found here is raised before anything starts."""
    script_path = settings.entry_script_path()
    override_dirs = (settings.app_root,) + ((script_path.parent,) if script_path else ())
    configure_logging(settings.log_level, override_dirs, settings.log_format)
    install_print_hook()
    for warning in warnings or ():
        logger.warning(warning)
    _log_banner(settings)
    # Key files are read and checked here, once: a bad one stops start-up before any port is bound or worker forked.
    auth = build_authenticator(settings)
    if settings.worker_count == 1:
        return _run_uvicorn(settings, auth)
    return _run_gunicorn(settings, auth)


def _log_banner(settings: Settings) -> None:
    logger.info("scoring_runtime %s", __version__)
    logger.info("Entry script: %s", settings.entry_script_path() or "main (from sys.path)")
    logger.info("Model directory: %s", settings.model_dir)
    logger.info("Config file: %s", settings.config_file)
    logger.info("Workers: %d, run() concurrency per worker: %d", settings.worker_count, settings.max_concurrency)
    ports = f"{settings.port}" + (f", health {settings.health_port}" if settings.health_port else "")
    logger.info("Listening on %s port %s", settings.host, ports)
    if settings.model_dir is None:
        logger.info("AZUREML_MODEL_DIR is not set; use --model_dir to set it.")


def _binds(settings: Settings) -> list[tuple[str, int]]:
    binds = [(settings.host, settings.port)]
    if settings.health_port is not None and settings.health_port != settings.port:
        binds.append((settings.host, settings.health_port))
    return binds


class DrainingServer(uvicorn.Server):
    """uvicorn's server, which also tells the app it is draining as soon as a shutdown signal arrives, and sets the
    worker's heap policy once init() has run (heap.py).

    Once the app is ready it accepts connections through BalancedAcceptor (accept_balance.py), a burst in one pass,
    rather than through uvloop's server, one per pass. Under gunicorn, `shares` and `slot` also spread connections
    evenly over the workers.
    """

    _idle_trim: IdleTrim | None = None

    def __init__(self, config: uvicorn.Config, shares: Shares | None = None, slot: int | None = None) -> None:
        super().__init__(config=config)
        self._shares = shares
        self._slot = slot
        self._acceptors: list[BalancedAcceptor] = []

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        if sockets is None:
            sockets = [self.config.bind_socket()]
        for sock in sockets:
            # uvicorn's bind_socket leaves listening to create_server; a socket gunicorn hands over already listens.
            if not sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
                sock.listen(self.config.backlog)
        # uvicorn's start-up (the lifespan, init()) without listening.
        await super().startup(sockets=[])
        if not self.started:
            for sock in sockets:
                sock.close()
            return
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
        app = config.app
        if isinstance(app, ScoringApp) and keep_freed_memory(app.settings.heap_keep_mb):
            self._idle_trim = IdleTrim()

    def publish_connections(self) -> None:
        for acceptor in self._acceptors:
            acceptor.publish()

    async def on_tick(self, counter: int) -> bool:
        if self._idle_trim is not None and counter % 10 == 0:  # ticks come every 0.1 s
            self._idle_trim.tick(self.server_state.total_requests, time.monotonic())
        return await super().on_tick(counter)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self._mark_draining()
        super().handle_exit(sig, frame)

    def drain(self) -> None:
        """Stop as on SIGTERM, without a signal (which uvicorn would raise again once it has stopped)."""
        self._mark_draining()
        self.should_exit = True

    def _mark_draining(self) -> None:
        app = self.config.app
        if isinstance(app, ScoringApp) and not app.draining:
            app.draining = True
            logger.info(
                "Draining: /ready answers 503; in-flight requests get up to %ss", self.config.timeout_graceful_shutdown
            )


def _run_uvicorn(settings: Settings, auth: Authenticator) -> int:
    app = ScoringApp(settings, authenticator=auth)
    app.owns_process = True
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
        for host, port in _binds(settings)
    ]
    server = DrainingServer(configs[0])
    sockets = [config.bind_socket() for config in configs]
    # Once drained, uvicorn raises the signal that stopped it again, under the handler that was there before it
    # started. A SIGTERM that drained cleanly is a clean exit (status 0), as orchestrators expect.
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: None)
    try:
        server.run(sockets=sockets)
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 0 if server.started else STARTUP_FAILURE


def preload(settings: Settings) -> tuple[UserScript, float]:
    """Import the script and run init() in this process, before gunicorn forks the workers.

    Returns the script and how long init() took, in seconds.
    """
    script = load_user_script(settings)
    started = time.perf_counter()
    pending = run_init(script, settings.model_dir)
    if inspect.isawaitable(pending):  # an event loop in the master only for `async def init`
        asyncio.run(finish_async_init(pending, settings.model_dir))
    elapsed = time.perf_counter() - started
    # Frozen before the fork, the model's objects are never traversed by a worker's collector, which would write
    # to their pages and so copy the memory the workers share.
    settle_garbage_collector()
    return script, elapsed


def _run_gunicorn(settings: Settings, auth: Authenticator) -> int:
    if not settings.metrics:
        return _serve_gunicorn(settings, auth)
    # Set before the script is preloaded and the workers forked: prometheus_client reads it when first imported.
    with multiprocess_directory() as directory:
        logger.info("Metrics of every worker are kept in %s", directory)
        return _serve_gunicorn(settings, auth)


def _serve_gunicorn(settings: Settings, auth: Authenticator) -> int:
    from gunicorn.app.base import BaseApplication
    from gunicorn.errors import HaltServer

    script, init_seconds = None, None
    if settings.worker_preload:
        try:
            script, init_seconds = preload(settings)
        except StartupError:
            return STARTUP_FAILURE

    options: dict[str, Any] = {
        "bind": [f"{host}:{port}" for host, port in _binds(settings)],
        "workers": settings.worker_count,
        "worker_class": "scoring_runtime.gunicorn_worker.ScoringWorker",
        "logger_class": "scoring_runtime.gunicorn_worker.GunicornLogger",
        "timeout": settings.worker_timeout,
        "graceful_timeout": settings.graceful_timeout_s,
        "keepalive": 5,
        "proc_name": "scoring_runtime",
        # gunicorn 27 would otherwise share one control socket in $HOME between every instance on the machine.
        "control_socket_disable": True,
    }
    options["pre_fork"] = "scoring_runtime.gunicorn_worker.pre_fork"
    options["child_exit"] = "scoring_runtime.gunicorn_worker.child_exit"

    class Application(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            for key, value in options.items():
                if key in self.cfg.settings:  # control_socket_disable only exists from gunicorn 24 on
                    self.cfg.set(key, value)

        def load(self) -> ScoringApp:
            app = ScoringApp(settings, script, auth, init_seconds)
            app.owns_process = True
            return app

    # gunicorn's arbiter leaves through sys.exit: 0 on a normal stop, 3 when a worker cannot boot. When a second
    # worker fails to boot while the arbiter is already halting, gunicorn raises HaltServer again, uncaught.
    try:
        Application().run()
    except HaltServer as halt:
        logger.error("Shutting down: %s", halt.reason)
        return int(halt.exit_status)
    return 0
