"""HTTP/1.1 for our server: uvicorn's httptools protocol with request-head bounds and cheaper bodies and writes, or,
on a uvicorn this server was not tested with, uvicorn's own protocol behind the same bounds (compat.py decides)."""

from __future__ import annotations

import asyncio

from scoring_runtime.serving.http.compat import internals_fit
from scoring_runtime.serving.http.guard import guarded
from scoring_runtime.settings import Settings


def protocol_class(settings: Settings) -> type[asyncio.Protocol]:
    """The protocol class to give uvicorn's Config as `http=`, with the settings' bounds."""
    bounds = {"max_head_bytes": settings.max_header_bytes, "head_timeout_s": float(settings.header_timeout_s)}
    if internals_fit():
        from scoring_runtime.serving.http.protocol import BoundedHttpToolsProtocol

        bounds["max_body_bytes"] = settings.max_request_bytes
        return type("ScoringHttpProtocol", (BoundedHttpToolsProtocol,), bounds)
    return guarded(stock_protocol(), **bounds)


def stock_protocol() -> type[asyncio.Protocol]:
    """The protocol uvicorn serves HTTP/1.1 with by itself (`--http auto`)."""
    import uvicorn

    config = uvicorn.Config(_no_app, lifespan="off", log_config=None)
    config.load()
    protocol: type[asyncio.Protocol] = config.http_protocol_class
    return protocol


async def _no_app(scope: object, receive: object, send: object) -> None:
    """A stand-in app for reading uvicorn's choice of protocol; it is never served."""
