"""Is the installed uvicorn one whose internals protocol.py and server.py may rely on? Checked once, at start-up.

protocol.py subclasses uvicorn's HttpToolsProtocol and reaches into its per-connection state; server.py accepts
connections itself and hands uvicorn's Server its own stand-ins. Neither is uvicorn's public API, and uvicorn changed
it within our old range (0.45: the request body's type; 0.50: start-up failures; 0.55: header values, a new protocol
family). So the check is: a release the suite ran on, every method and attribute used there, and a probe connection
that parses one request head, as it would for real. Any problem, and the server uses uvicorn's own protocol (behind
guard.py's request-head bounds) and uvicorn's own accept loop, and says so.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import logging
from typing import Any

import uvicorn

logger = logging.getLogger("azmlinfsrv")

# The minor releases the test suite ran on (make test: the declared floor and the newest), as pyproject.toml pins.
TESTED_MINORS = ("0.54", "0.55")
PROTOCOL_METHODS = (
    "connection_made",
    "connection_lost",
    "data_received",
    "on_message_begin",
    "on_headers_complete",
    "on_body",
    "on_message_complete",
    "send_400_response",
    "_unset_keepalive_if_required",
    "timeout_keep_alive_handler",
)
CONNECTION_ATTRIBUTES = (
    "loop",
    "parser",
    "url",
    "headers",
    "scope",
    "cycle",
    "pipeline",
    "server_state",
    "timeout_keep_alive",
    "timeout_keep_alive_task",
    "transport",
)
CYCLE_ATTRIBUTES = ("scope", "transport", "body", "more_body", "response_complete", "message_event")
SERVER_ATTRIBUTES = ("startup", "shutdown", "on_tick", "handle_exit", "serve", "run", "server_state", "should_exit")
# Set by Server.startup, which server.py calls with no sockets and then replaces the servers of.
STARTUP_NAMES = ("servers", "lifespan")
CONFIG_ATTRIBUTES = ("backlog", "bind_socket", "timeout_graceful_shutdown", "load", "loaded")
LOST = (
    "bodies handed over without uvicorn's copies, each response's head and body in one write, connections accepted "
    "in bursts and balanced across workers"
)


@functools.cache
def uvicorn_problems() -> tuple[str, ...]:
    """What makes the installed uvicorn unfit for protocol.py and server.py; empty when it is fit. Cached."""
    version = str(getattr(uvicorn, "__version__", "unknown"))
    if ".".join(version.split(".")[:2]) not in TESTED_MINORS:
        return (f"uvicorn {version} is not a release this server was tested with ({', '.join(TESTED_MINORS)})",)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return _checked(version)
    # The probe runs an event loop of its own, which cannot run in a thread that already runs one.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(_checked, version).result()


def _checked(version: str) -> tuple[str, ...]:
    try:
        return tuple(_missing(version))
    except Exception as exc:  # whatever a changed uvicorn does to the probe, it means the same
        return (f"a probe connection through uvicorn {version}'s protocol failed: {type(exc).__name__}: {exc}",)


def internals_fit() -> bool:
    """True when our protocol and accept loop can be used; otherwise logs, once, what is used instead."""
    problems = uvicorn_problems()
    if problems and not _warned:
        _warn(problems)
    return not problems


_warned = False


def _warn(problems: tuple[str, ...]) -> None:
    global _warned
    _warned = True
    logger.warning(
        "%s. Serving with uvicorn's own HTTP protocol and accept loop: the request-head bounds (431, 408) still "
        "hold; lost until a tested uvicorn is installed: %s.",
        "; ".join(problems),
        LOST,
    )


def _missing(version: str) -> list[str]:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    from uvicorn.server import ServerState

    missing = [f"HttpToolsProtocol.{name}" for name in PROTOCOL_METHODS if not hasattr(HttpToolsProtocol, name)]
    config = uvicorn.Config(_app, lifespan="off", log_config=None, http="httptools")
    missing += [f"Config.{name}" for name in CONFIG_ATTRIBUTES if not hasattr(config, name)]
    server = uvicorn.Server(config)
    missing += [f"Server.{name}" for name in SERVER_ATTRIBUTES if not hasattr(server, name)]
    startup_names = getattr(getattr(uvicorn.Server.startup, "__code__", None), "co_names", ())
    missing += [f"Server.{name}" for name in STARTUP_NAMES if name not in startup_names]
    if missing:
        return [f"uvicorn {version} lacks {', '.join(missing)}"]
    loop = asyncio.new_event_loop()
    state = ServerState()
    try:
        config.load()
        if not hasattr(config, "http_protocol_class"):
            return [f"uvicorn {version} lacks Config.http_protocol_class"]
        protocol = HttpToolsProtocol(config=config, server_state=state, app_state={}, _loop=loop)
        protocol.connection_made(_Transport())  # type: ignore[arg-type]
        protocol.data_received(b"POST /probe HTTP/1.1\r\nhost: probe\r\ncontent-length: 2\r\n\r\n")
        cycle = getattr(protocol, "cycle", None)
        missing += [name for name in CONNECTION_ATTRIBUTES if not hasattr(protocol, name)]
        missing += [f"cycle.{name}" for name in CYCLE_ATTRIBUTES if not hasattr(cycle, name)]
        if not hasattr(state, "default_headers") or not hasattr(state, "connections"):
            missing.append("ServerState.default_headers or .connections")
        problems = [f"uvicorn {version}'s connections lack {', '.join(missing)}"] if missing else []
        if not isinstance(getattr(cycle, "body", None), bytearray):
            # on_message_complete replaces it with the bytes object it hands on; that assumes uvicorn's own is a
            # buffer it only reads back with bytes().
            problems.append(f"uvicorn {version} keeps a request body as {type(getattr(cycle, 'body', None)).__name__}")
        return problems
    finally:
        for task in list(state.tasks):
            task.cancel()
        if state.tasks:
            loop.run_until_complete(asyncio.gather(*state.tasks, return_exceptions=True))
        loop.close()


async def _app(scope: Any, receive: Any, send: Any) -> None:
    """The probe connection's application, which its request never reaches: the task is cancelled unstarted."""


class _Transport:
    """Enough of a transport for a connection that receives one head and writes nothing."""

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default

    def is_closing(self) -> bool:
        return False

    def write(self, data: bytes) -> None:
        pass

    def close(self) -> None:
        pass

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass
