"""The request-head bounds in front of uvicorn's own HTTP protocol, for a uvicorn this server was not tested with.

`HeadGuard` stands between the transport and the protocol uvicorn would use by itself, and relies on nothing of it
but the asyncio protocol interface: it follows where each request head starts and ends with a parser of its own
(httptools' public API; llhttp frames requests as uvicorn's parser does), and passes every byte on unless a head is
refused. Parsing twice costs CPU, which is why this is the fallback and not the way (protocol.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any, ClassVar, cast

import httptools

from scoring_runtime.serving.http.bounds import HeadBounds


class HeadGuard(HeadBounds, asyncio.Protocol):
    """One connection: the bounds, then `inner_class` (set by `guarded`) for everything else."""

    inner_class: ClassVar[type[asyncio.Protocol]]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._inner = self.inner_class(*args, **kwargs)
        self._server_state = kwargs.get("server_state")
        self._parser = httptools.HttpRequestParser(self)
        self._url = b""
        self._headers: list[tuple[bytes, bytes]] = []
        # Set once the guard's parser can no longer follow the connection (a malformed request, which the inner
        # protocol answers with 400, or an upgrade): from then on every byte goes straight to the inner protocol.
        self._passing = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass asyncio's
        self._head_connection_made(asyncio.get_running_loop())
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self._lingering:
            return
        if self._passing:
            self._inner.data_received(data)
            return
        self._head_chunk_starts()
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError:
            if self._refusal is not None:
                self._send_json_and_close(*self._refusal)
                return
            self._stop_guarding()
        except httptools.HttpParserUpgrade:
            self._stop_guarding()
        if self._head_chunk_ends(len(data)):
            return
        self._inner.data_received(data)

    def _stop_guarding(self) -> None:
        self._passing = True
        self._awaiting_head = False
        self._cancel_head_timer()

    # httptools' callbacks

    def on_message_begin(self) -> None:
        self._url = b""
        self._headers = []
        self._head_begins()

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        self._head_completes(self._parser.get_method(), self._url, self._headers)
        self._headers = []

    # the rest of the asyncio protocol interface, passed on

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()

    def _default_headers(self) -> Iterable[tuple[bytes, bytes]]:
        headers: Iterable[tuple[bytes, bytes]] = getattr(self._server_state, "default_headers", ())
        return headers


def guarded(inner: type[asyncio.Protocol], **bounds: float) -> type[HeadGuard]:
    """A HeadGuard class in front of `inner`, with the given bounds."""
    return type("GuardedHttpProtocol", (HeadGuard,), {"inner_class": inner, **bounds})
