"""uvicorn's httptools protocol, with the request-head bounds (bounds.py) and two savings on every request.

- Each response's head and the first piece of its body leave in one write (`head_with_body.py`).
- A body of declared length is handed to the app whole, without uvicorn's copies (`on_body`).

This subclasses an internal class of uvicorn and reaches into its per-connection state: compat.py checks, at start-up,
that the installed uvicorn is one it was tested with, and otherwise the server uses guard.py instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from scoring_runtime.serving.http.bounds import HeadBounds
from scoring_runtime.serving.http.head_with_body import HeadWithBody


class BoundedHttpToolsProtocol(HeadBounds, HttpToolsProtocol):
    """One connection. Subclasses made by `protocol_class` set the bounds."""

    max_body_bytes = 100 * 1024 * 1024
    # Called once the connection has closed (and left the server's set of connections): the balanced acceptor's way
    # of telling the other workers at once rather than at its next heartbeat.
    on_closed: Callable[[], None] | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._body_chunks: list[bytes] | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_connection_made(self.loop)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)
        if self.on_closed is not None:
            self.on_closed()

    def data_received(self, data: bytes) -> None:
        if self._lingering:
            return
        self._head_chunk_starts()
        super().data_received(data)
        if self._lingering or self.transport.is_closing():
            return
        self._head_chunk_ends(len(data))

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_begins()

    def on_headers_complete(self) -> None:
        length = self._head_completes(self.parser.get_method(), self.url, self.headers)
        super().on_headers_complete()
        if self.cycle is not None and self.cycle.scope is self.scope:
            self.cycle.transport = HeadWithBody(self.transport, self.loop)  # type: ignore[assignment]
            declared = int(length) if length.isdigit() else 0
            self._body_chunks = [] if 0 < declared <= self.max_body_bytes else None

    def on_body(self, body: bytes) -> None:
        """uvicorn copies each piece of a body into a bytearray, pauses reading past 64 KiB until the app takes it,
        and copies it again into the message; the app then joins the messages: three copies of every byte. A body
        whose declared length is within SCORING_MAX_REQUEST_BYTES is kept as the pieces read and given to the app as
        one message when complete (no copy for a body read in one piece, one join otherwise). Its size is bounded by
        that declaration, so memory is bounded as before; a chunked body keeps uvicorn's flow control."""
        chunks = self._body_chunks
        if chunks is None or self.cycle.response_complete:
            super().on_body(body)
            return
        chunks.append(body)

    def on_message_complete(self) -> None:
        chunks, self._body_chunks = self._body_chunks, None
        if chunks and not self.cycle.response_complete:
            # A bytes object, which uvicorn's `bytes(self.body)` hands on without copying.
            self.cycle.body = chunks[0] if len(chunks) == 1 else b"".join(chunks)  # type: ignore[assignment]
        super().on_message_complete()
        answered = self.cycle.response_complete and not self.pipeline and not self.transport.is_closing()
        if answered and self.timeout_keep_alive_task is None:
            # The end of a body its request was answered without: from here the connection idles under the
            # keep-alive timeout, as after any answer (the body's bytes cancelled uvicorn's timer for good).
            self.timeout_keep_alive_task = self.loop.call_later(
                self.timeout_keep_alive, self.timeout_keep_alive_handler
            )

    def send_400_response(self, msg: str) -> None:
        """uvicorn calls this for any parser error, ours included: answer ours with its own status and message."""
        if self._refusal is None:
            super().send_400_response(msg)
            return
        self._send_json_and_close(*self._refusal)

    def _default_headers(self) -> Iterable[tuple[bytes, bytes]]:
        return self.server_state.default_headers
