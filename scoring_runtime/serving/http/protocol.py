"""uvicorn's httptools protocol with two bounds on the request head: its size and the time it may take to arrive.

Neither llhttp nor uvicorn's httptools protocol limits a request head: a client could send one endless header and
the server would buffer all of it (a memory attack), or trickle a head one byte at a time and hold the socket forever
(slowloris; uvicorn arms no timer before the first request of a connection). The subclass here keeps httptools,
the fast parser, and adds SCORING_MAX_HEADER_BYTES (431) and SCORING_HEADER_TIMEOUT_S (408).

The subclass also sends each response's head and the first piece of its body in one write (`head_with_body.py`), and
hands a body of declared length to the app whole, without uvicorn's copies (`on_body`); the rest of a big one is read
past the parser, straight into its buffers (`body.py`).

How the size is counted: a chunk read from the socket that leaves the head still incomplete is head, so those
chunks are added up (all but the one the request began in) and the head is refused as soon as they pass the limit:
at most the limit plus two socket reads is ever buffered. A head that completes within a chunk is measured from its
parsed parts instead (request line and `name: value` lines), so a big head that arrives in one read is refused too.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from scoring_runtime.config import Settings
from scoring_runtime.serving.http.body import MIN_DIRECT_BYTES, BodyReceiver
from scoring_runtime.serving.http.head_with_body import HeadWithBody

logger = logging.getLogger("scoring_runtime")

# Bytes of a request line beyond the method and target: " HTTP/1.1\r\n"; of a header line beyond name and value:
# ": " and "\r\n"; and the blank line that ends the head.
_REQUEST_LINE_EXTRA = 11
_HEADER_LINE_EXTRA = 4
_HEAD_END = 2
# After a refusal, how long what the client still sends is read and dropped before the socket is closed.
LINGER_S = 2.0


class _HeadTooLarge(Exception):
    """Raised inside a parser callback to stop httptools at once; the protocol then answers 431."""


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """One connection. Subclasses made by `protocol_class` set the two bounds."""

    max_head_bytes = 64 * 1024
    head_timeout_s = 60.0
    max_body_bytes = 100 * 1024 * 1024
    # Called once the connection has closed (and left the server's set of connections): the balanced acceptor's way
    # of telling the other workers at once rather than at its next heartbeat.
    on_closed: Callable[[], None] | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._awaiting_head = True
        self._head_started = False
        self._head_bytes = 0
        self._message_began_in_chunk = False
        self._refusal: tuple[int, str] | None = None
        self._head_timer: asyncio.TimerHandle | None = None
        self._head_since = 0.0
        self._lingering = False
        self._body_chunks: list[bytes] | None = None
        self._body_declared = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # uvicorn arms its keep-alive timer only after a response: the first head would otherwise have no deadline.
        self._head_since = self.loop.time()
        self._arm_head_timer(self.head_timeout_s)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)
        if self.on_closed is not None:
            self.on_closed()

    def data_received(self, data: bytes) -> None:
        if self._lingering:
            return
        self._message_began_in_chunk = False
        super().data_received(data)
        if self._lingering or self.transport.is_closing():
            return
        if not self._awaiting_head:
            chunks = self._body_chunks
            if chunks is not None:
                got = sum(map(len, chunks))
                left = self._body_declared - got
                if left >= MIN_DIRECT_BYTES:
                    # The rest of a big body goes straight from the socket to its buffers (see body.py).
                    self.transport.set_protocol(BodyReceiver(self, chunks, got, left))
                    self._body_chunks = None
            return
        # The head is still incomplete, so this chunk was all head; unless the message began in it, when part of it
        # may be the end of the previous (pipelined) request: such a chunk is not counted.
        if not self._message_began_in_chunk:
            self._head_bytes += len(data)
        if self._head_bytes > self.max_head_bytes:
            self._send_json_and_close(*self._refuse_head_size())

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._awaiting_head = True
        self._head_started = True
        self._message_began_in_chunk = True
        self._head_bytes = 0
        # One timer per connection, not one per request: it is armed here only when none is pending, and when it
        # fires it looks at the head that is arriving then (see _head_timed_out).
        self._head_since = self.loop.time()
        if self._head_timer is None:
            self._arm_head_timer(self.head_timeout_s)

    def on_headers_complete(self) -> None:
        self._awaiting_head = False
        size = len(self.parser.get_method()) + len(self.url) + _REQUEST_LINE_EXTRA + _HEAD_END
        length = b""
        for name, value in self.headers:  # one pass: the head's size, and the body's declared length
            size += len(name) + len(value) + _HEADER_LINE_EXTRA
            if name == b"content-length":
                length = value
        if size > self.max_head_bytes:
            self._refusal = self._refuse_head_size()
            raise _HeadTooLarge()
        super().on_headers_complete()
        if self.cycle is not None and self.cycle.scope is self.scope:
            self.cycle.transport = HeadWithBody(self.transport, self.loop)  # type: ignore[assignment]
            declared = int(length) if length.isdigit() else 0
            self._body_chunks = [] if 0 < declared <= self.max_body_bytes else None
            self._body_declared = declared

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

    def body_wanted(self) -> bool:
        if self.cycle.response_complete:
            # The answer left before the body ended and armed the keep-alive timer: a body still arriving keeps the
            # connection, as any bytes read through data_received do.
            self._unset_keepalive_if_required()
            return False
        return True

    def body_received(self, body: bytes) -> None:
        """The end of a body read by a BodyReceiver: this protocol reads the connection again, with a new parser, as
        the old one still expects the body's bytes; the message is then complete as if the parser had said so."""
        self.transport.set_protocol(self)
        self.parser = _new_parser(self)
        self._body_chunks = [body]
        self.on_message_complete()
        if self.cycle.response_complete and not self.pipeline and not self.transport.is_closing():
            # The body of an answered request: from its end, the connection idles under the keep-alive timeout as
            # after any answer (uvicorn leaves such a connection open for good).
            self._unset_keepalive_if_required()
            self.timeout_keep_alive_task = self.loop.call_later(
                self.timeout_keep_alive, self.timeout_keep_alive_handler
            )

    def send_400_response(self, msg: str) -> None:
        """uvicorn calls this for any parser error, ours included: answer ours with its own status and message."""
        if self._refusal is None:
            super().send_400_response(msg)
            return
        status, message = self._refusal
        self._send_json_and_close(status, message)

    def _refuse_head_size(self) -> tuple[int, str]:
        logger.warning("Refused a request whose headers are over %d bytes (431)", self.max_head_bytes)
        return 431, f"Request headers are larger than the limit of {self.max_head_bytes} bytes"

    def _arm_head_timer(self, delay: float) -> None:
        if self.head_timeout_s > 0:
            self._head_timer = self.loop.call_later(delay, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self._lingering or self.transport.is_closing() or not self._awaiting_head:
            return  # between heads: the next one arms the timer again
        remaining = self._head_since + self.head_timeout_s - self.loop.time()
        if remaining > 0:  # the timer was armed for an earlier head; this one still has time
            self._arm_head_timer(remaining)
            return
        if not self._head_started:
            self.transport.close()  # nothing was asked: close quietly, as an idle keep-alive connection is closed
            return
        logger.warning("Closed a connection whose request headers took over %gs (408)", self.head_timeout_s)
        self._send_json_and_close(408, f"Request headers did not arrive within {self.head_timeout_s:g} seconds")

    def _send_json_and_close(self, status: int, message: str) -> None:
        body = json.dumps({"message": message}).encode()
        lines = [f"HTTP/1.1 {status} {_REASONS[status]}".encode()]
        lines += [name + b": " + value for name, value in self.server_state.default_headers]
        lines += [
            b"content-type: application/json",
            b"content-length: " + str(len(body)).encode(),
            b"x-ms-run-function-failed: False",
            b"connection: close",
        ]
        self.transport.write(b"\r\n".join(lines) + b"\r\n\r\n" + body)
        self._linger()

    def _linger(self) -> None:
        """Close after the answer without losing it: closing a socket with unread input makes the kernel send a
        reset, and a client still sending (the head being refused) would get that instead of the answer. So this
        side is shut for writing, and the rest of the input is read and dropped until the client closes, or for
        LINGER_S at most."""
        self._cancel_head_timer()
        self._lingering = True
        if self.transport.can_write_eof():
            self.transport.write_eof()
            self.loop.call_later(LINGER_S, self.transport.close)
        else:
            self.transport.close()


def _new_parser(protocol: HttpToolsProtocol) -> httptools.HttpRequestParser:
    """A parser set up as uvicorn sets up a connection's first one."""
    parser = httptools.HttpRequestParser(protocol)
    parser.set_dangerous_leniencies(lenient_data_after_close=True)
    return parser


_REASONS = {408: "Request Timeout", 431: "Request Header Fields Too Large"}


def protocol_class(settings: Settings) -> type[asyncio.Protocol]:
    """The protocol class to give uvicorn's Config as `http=`, with the settings' bounds."""
    return type(
        "ScoringHttpProtocol",
        (BoundedHttpToolsProtocol,),
        {
            "max_head_bytes": settings.max_header_bytes,
            "head_timeout_s": float(settings.header_timeout_s),
            "max_body_bytes": settings.max_request_bytes,
        },
    )
