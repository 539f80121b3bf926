"""A large request body of declared length, read from the socket straight into its buffers.

Read the usual way, every byte of a body is copied three times in user space before the app sees it: out of the
event loop's read buffer into a new bytes object, out of that into the piece httptools hands to `on_body`, and into
the joined whole. While a big body arrives, the connection's protocol is swapped for a `BodyReceiver` (an asyncio
BufferedProtocol, which uvloop and asyncio both support), which has the socket read into buffers of its own; they
become the body with one copy, into the bytes object the app receives.

Memory follows what arrives, not what is declared: the buffers grow with the bytes received (the first holds at
most SEGMENT_BYTES), so a client declaring a large body and sending little costs little.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

# Below this many body bytes still to come, the swap is not worth its cost.
MIN_DIRECT_BYTES = 64 * 1024
SEGMENT_BYTES = 1024 * 1024


class BodyOwner(Protocol):
    """The HTTP protocol a receiver stands in for, and gives the connection back to."""

    def body_wanted(self) -> bool: ...

    def body_received(self, body: bytes) -> None: ...

    def connection_lost(self, exc: Exception | None) -> None: ...

    def eof_received(self) -> bool | None: ...

    def pause_writing(self) -> None: ...

    def resume_writing(self) -> None: ...


class BodyReceiver(asyncio.BufferedProtocol):
    """Stands in as the connection's protocol until exactly `left` more bytes have arrived (never more: the bytes
    after them belong to the next request, which the owner's parser must see)."""

    __slots__ = ("_owner", "_parts", "_segment", "_filled", "_left", "_received")

    def __init__(self, owner: BodyOwner, received: list[bytes], received_bytes: int, left: int) -> None:
        """`received` are the pieces parsed with the head, `received_bytes` their length (the owner has counted it)."""
        self._owner = owner
        self._parts: list[bytes | bytearray] = list(received)
        self._segment: memoryview | None = None
        self._filled = 0
        self._left = left
        self._received = received_bytes

    def get_buffer(self, sizehint: int) -> memoryview:
        segment = self._segment
        if not self._owner.body_wanted():
            # The answer has gone without the body being read: the rest is read over one buffer, and dropped.
            if segment is None or self._parts:
                segment = self._segment = memoryview(bytearray(min(self._left, MIN_DIRECT_BYTES)))
                self._parts = []
            self._filled = 0
            return segment[: self._left]
        if segment is None or self._filled == len(segment):
            # Grown with what has arrived: at most twice the bytes received, plus one SEGMENT_BYTES.
            block = bytearray(min(self._left, max(SEGMENT_BYTES, self._received)))
            self._parts.append(block)
            segment = self._segment = memoryview(block)
            self._filled = 0
        return segment[self._filled : self._filled + self._left]

    def buffer_updated(self, nbytes: int) -> None:
        self._filled += nbytes
        self._received += nbytes
        self._left -= nbytes
        if self._left == 0:
            parts = self._parts
            self._parts = []
            self._segment = None  # its buffer is let go of as soon as the event loop lets go of its view
            self._owner.body_received(b"".join(parts))

    def connection_lost(self, exc: Exception | None) -> None:
        self._owner.connection_lost(exc)

    def eof_received(self) -> bool | None:
        return self._owner.eof_received()

    def pause_writing(self) -> None:
        self._owner.pause_writing()

    def resume_writing(self) -> None:
        self._owner.resume_writing()
