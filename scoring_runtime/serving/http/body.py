"""A large request body of declared length, read from the socket straight into the bytes object the app receives.

Read the usual way, every byte of a body is copied three times in user space before the app sees it: out of the
event loop's read buffer into a new bytes object, out of that into the piece httptools hands to `on_body`, and into
the joined whole. While a big body arrives, the connection's reads go to a `BodyReceiver` (through the connection's
`SharedReader`, an asyncio BufferedProtocol, which uvloop and asyncio both support), which has the socket read into
the body itself: a bytes object of the declared length, created unfilled (`unfilled_bytes.py`) and handed over once
the last byte is in. The kernel's copy is then the only one for all but the part read with the head, which is copied
once (the read buffer is shared, see `shared_read.py`, and the parser is given the head alone).

Memory follows what arrives, not what is declared: until bytes are written into it, the unfilled object takes no
memory the process did not already hold (new pages of the heap, or of a mapping, are only address space). A body
over WHOLE_BYTES, or any body where unfilled bytes objects cannot be made, goes into buffers that grow with the
bytes received (the first holds at most SEGMENT_BYTES), joined at the end.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from scoring_runtime.serving.http.unfilled_bytes import unfilled_bytes

# Below this many body bytes still to come, the swap is not worth its cost.
MIN_DIRECT_BYTES = 64 * 1024
SEGMENT_BYTES = 1024 * 1024
# Up to this size a body is made whole at once. Above it the C library would map each one afresh (its largest
# threshold for serving blocks from the heap), and the declared size is left to prove itself as bytes arrive.
WHOLE_BYTES = 32 * 1024 * 1024


class BodyOwner(Protocol):
    """The HTTP protocol a receiver reads a body for, and gives the connection's reads back to."""

    def body_wanted(self) -> bool: ...

    def body_received(self, body: bytes) -> None: ...


class BodyReceiver:
    """Takes a connection's reads until exactly `left` more bytes have arrived (never more: the bytes after them
    belong to the next request, which the owner's parser must see)."""

    __slots__ = ("_owner", "_parts", "_segment", "_filled", "_left", "_received")

    def __init__(
        self, owner: BodyOwner, received: Sequence[bytes | memoryview], received_bytes: int, left: int
    ) -> None:
        """`received` are the pieces read with the head, `received_bytes` their length (the owner has counted it).
        They are copied, or kept as bytes, before this returns: a view may be of a buffer that is read into again."""
        self._owner = owner
        self._left = left
        self._received = received_bytes
        total = self._received + left
        whole = unfilled_bytes(total) if total <= WHOLE_BYTES else None
        # `_segment` is a view into the last of `_parts` (or into the scratch buffer of an unwanted body); a view of
        # an unfilled bytes object does not keep it alive, so the two are only ever let go of together.
        self._parts: list[bytes | bytearray]
        self._segment: memoryview | None
        if whole is None:
            self._parts, self._segment, self._filled = [bytes(piece) for piece in received], None, 0
        else:
            body, view = whole
            filled = 0
            for piece in received:
                view[filled : filled + len(piece)] = piece
                filled += len(piece)
            self._parts, self._segment, self._filled = [body], view, filled

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
            self._segment = None
            # bytes() of a bytes object is that object: a body made whole at once is handed over as it is.
            body = b"".join(parts) if len(parts) != 1 else bytes(parts[0])
            self._owner.body_received(body)
