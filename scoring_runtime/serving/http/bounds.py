"""Two bounds on a request head, its size and the time it may take to arrive, for either of our HTTP protocols.

Neither llhttp nor uvicorn's protocols limit a request head: a client could send one endless header and the server
would buffer all of it (a memory attack), or trickle a head one byte at a time and hold the socket forever
(slowloris; uvicorn arms no timer before the first request of a connection). SCORING_MAX_HEADER_BYTES answers 431
and SCORING_HEADER_TIMEOUT_S answers 408, and the connection is closed.

How the size is counted: a chunk read from the socket that leaves the head still incomplete is head, so those
chunks are added up (all but the one the request began in) and the head is refused as soon as they pass the limit:
at most the limit plus two socket reads is ever buffered. A head that completes within a chunk is measured from its
parsed parts instead (request line and `name: value` lines), so a big head that arrives in one read is refused too.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterable

logger = logging.getLogger("azmlinfsrv")

# Bytes of a request line beyond the method and target: " HTTP/1.1\r\n"; of a header line beyond name and value:
# ": " and "\r\n"; and the blank line that ends the head.
_REQUEST_LINE_EXTRA = 11
_HEADER_LINE_EXTRA = 4
_HEAD_END = 2
# After a refusal, how long what the client still sends is read and dropped before the socket is closed.
LINGER_S = 2.0
_REASONS = {408: "Request Timeout", 431: "Request Header Fields Too Large"}


class HeadTooLarge(Exception):
    """Raised inside a parser callback to stop httptools at once; the protocol then answers 431."""


class HeadBounds:
    """The bounds' state and timer for one connection. A protocol mixes this in, sets `transport` in its
    `connection_made`, calls the `_head_*` methods at the points of parsing they name, and answers `_refusal`."""

    max_head_bytes = 64 * 1024
    head_timeout_s = 60.0
    transport: asyncio.Transport

    def _head_connection_made(self, loop: asyncio.AbstractEventLoop) -> None:
        self._clock = loop
        self._awaiting_head = True
        self._head_started = False
        self._head_bytes = 0
        self._message_began_in_chunk = False
        self._refusal: tuple[int, str] | None = None
        self._head_timer: asyncio.TimerHandle | None = None
        self._lingering = False
        # uvicorn arms its keep-alive timer only after a response: the first head would otherwise have no deadline.
        self._head_since = loop.time()
        self._arm_head_timer(self.head_timeout_s)

    def _head_chunk_starts(self) -> None:
        self._message_began_in_chunk = False

    def _head_begins(self) -> None:
        """A request's first byte was parsed."""
        self._awaiting_head = True
        self._head_started = True
        self._message_began_in_chunk = True
        self._head_bytes = 0
        # One timer per connection, not one per request: it is armed here only when none is pending, and when it
        # fires it looks at the head that is arriving then (see _head_timed_out).
        self._head_since = self._clock.time()
        if self._head_timer is None:
            self._arm_head_timer(self.head_timeout_s)

    def _head_completes(self, method: bytes, url: bytes, headers: Iterable[tuple[bytes, bytes]]) -> bytes:
        """The head was parsed whole: measured from its parts, and refused (HeadTooLarge) when over the limit.

        Returns its Content-Length value (b"" without one), found in the same pass.
        """
        self._awaiting_head = False
        size = len(method) + len(url) + _REQUEST_LINE_EXTRA + _HEAD_END
        length = b""
        for name, value in headers:
            size += len(name) + len(value) + _HEADER_LINE_EXTRA
            if name == b"content-length":
                length = value
        if size > self.max_head_bytes:
            self._refusal = self._refuse_head_size()
            raise HeadTooLarge()
        return length

    def _head_chunk_ends(self, size: int) -> bool:
        """A chunk of `size` bytes was parsed. True when the head it left incomplete is now over the limit: refused."""
        if not self._awaiting_head:
            return False
        # The head is still incomplete, so this chunk was all head; unless the message began in it, when part of it
        # may be the end of the previous (pipelined) request: such a chunk is not counted.
        if not self._message_began_in_chunk:
            self._head_bytes += size
        if self._head_bytes <= self.max_head_bytes:
            return False
        self._send_json_and_close(*self._refuse_head_size())
        return True

    def _refuse_head_size(self) -> tuple[int, str]:
        logger.warning("Refused a request whose headers are over %d bytes (431)", self.max_head_bytes)
        return 431, f"Request headers are larger than the limit of {self.max_head_bytes} bytes"

    def _arm_head_timer(self, delay: float) -> None:
        if self.head_timeout_s > 0:
            self._head_timer = self._clock.call_later(delay, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self._lingering or self.transport.is_closing() or not self._awaiting_head:
            return  # between heads: the next one arms the timer again
        remaining = self._head_since + self.head_timeout_s - self._clock.time()
        if remaining > 0:  # the timer was armed for an earlier head; this one still has time
            self._arm_head_timer(remaining)
            return
        if not self._head_started:
            self.transport.close()  # nothing was asked: close quietly, as an idle keep-alive connection is closed
            return
        logger.warning("Closed a connection whose request headers took over %gs (408)", self.head_timeout_s)
        self._send_json_and_close(408, f"Request headers did not arrive within {self.head_timeout_s:g} seconds")

    def _default_headers(self) -> Iterable[tuple[bytes, bytes]]:
        """The headers the server sends on every response (uvicorn's Server and Date)."""
        return ()

    def _send_json_and_close(self, status: int, message: str) -> None:
        body = json.dumps({"message": message}).encode()
        lines = [f"HTTP/1.1 {status} {_REASONS[status]}".encode()]
        lines += [name + b": " + value for name, value in self._default_headers()]
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
            self._clock.call_later(LINGER_S, self.transport.close)
        else:
            self.transport.close()
