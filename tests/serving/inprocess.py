"""An HTTP protocol class served in this process on a loopback port, on either event loop the server runs on."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import uvicorn
import uvloop
from uvicorn.server import ServerState

LOOPS = {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}
Talk = Callable[[int], Awaitable[Any]]


def serve_protocol(loop_name: str, protocol: type[asyncio.Protocol], app: Any, talk: Talk, **config: Any) -> Any:
    """Serve `app` through `protocol` on a fresh loop, run `talk(port)` (30 s at most) and return what it returns."""
    settings = uvicorn.Config(app, http=protocol, lifespan="off", access_log=False, log_config=None, **config)
    state = ServerState()

    async def main() -> Any:
        def connection() -> asyncio.Protocol:
            return protocol(config=settings, server_state=state, app_state={})  # type: ignore[call-arg]

        server = await asyncio.get_running_loop().create_server(connection, "127.0.0.1", 0)
        try:
            return await asyncio.wait_for(talk(server.sockets[0].getsockname()[1]), 30)
        finally:
            server.close()
            for open_connection in list(state.connections):
                open_connection.transport.close()
            await server.wait_closed()
            for _ in range(5):  # the transports' own closing callbacks
                await asyncio.sleep(0)

    loop = LOOPS[loop_name]()
    try:
        return loop.run_until_complete(main())
    finally:
        loop.close()
