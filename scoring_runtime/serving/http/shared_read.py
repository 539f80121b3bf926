"""Reading a connection into one buffer per event loop, shared by all of its connections.

For a plain asyncio Protocol, uvloop reads into a buffer of its own and copies each read into a new bytes object
for `data_received`; the HTTP parser then copies every body piece out of that into another. A BufferedProtocol is
read into a buffer it names instead. The HTTP protocol here names one buffer per event loop, which its connections
share: a read is parsed (and every part worth keeping copied out by the parser) before the loop reads anything
else, so no connection's bytes outlive the call that hands them over.

uvloop only reads into the buffer of a protocol that is not an `asyncio.Protocol`, as uvicorn's protocol is; so a
`SharedReader` stands in for it on the transport and passes it each read and every other connection event. While a
big body arrives, the reader hands the connection's reads to a `DirectRead` instead (body_receiver.py).
"""

from __future__ import annotations

import asyncio
from typing import Protocol
from weakref import WeakKeyDictionary

# As much as uvloop reads at once for a plain protocol.
READ_BYTES = 256 * 1024


class SharedBuffer:
    """One loop's read buffer: the bytes (to search) and a view of them (to read into and slice without copying)."""

    __slots__ = ("data", "view")

    def __init__(self, size: int) -> None:
        self.data = bytearray(size)
        self.view = memoryview(self.data)


_BUFFERS: WeakKeyDictionary[asyncio.AbstractEventLoop, SharedBuffer] = WeakKeyDictionary()


class ReadOwner(Protocol):
    """The protocol a `SharedReader` reads for: it gets each read, and the connection's other events."""

    def shared_read(self, buffer: SharedBuffer, nbytes: int) -> None:
        """`nbytes` were read into the start of `buffer`; they may be overwritten as soon as this returns."""

    def connection_lost(self, exc: Exception | None) -> None: ...

    def eof_received(self) -> bool | None: ...

    def pause_writing(self) -> None: ...

    def resume_writing(self) -> None: ...


class DirectRead(Protocol):
    """Takes a connection's reads into buffers of its own for a while (a big body, see body_receiver.py)."""

    def get_buffer(self, sizehint: int) -> memoryview: ...

    def buffer_updated(self, nbytes: int) -> None: ...


class SharedReader(asyncio.BufferedProtocol):
    """A connection's protocol on the transport: reads it into its event loop's shared buffer for a `ReadOwner`, or,
    while `direct` is set, into that reader's buffers, and passes the owner every other connection event.

    The direct reader is switched here rather than by `transport.set_protocol`, which in uvloop stops and restarts
    reading: two changes to the loop's epoll set for every big body."""

    __slots__ = ("_buffer", "_owner", "direct")

    def __init__(self, owner: ReadOwner, loop: asyncio.AbstractEventLoop) -> None:
        self._owner = owner
        self._buffer = shared_buffer(loop)
        self.direct: DirectRead | None = None

    def get_buffer(self, sizehint: int) -> memoryview:
        direct = self.direct
        return self._buffer.view if direct is None else direct.get_buffer(sizehint)

    def buffer_updated(self, nbytes: int) -> None:
        direct = self.direct
        if direct is None:
            self._owner.shared_read(self._buffer, nbytes)
        else:
            direct.buffer_updated(nbytes)

    def connection_lost(self, exc: Exception | None) -> None:
        self._owner.connection_lost(exc)

    def eof_received(self) -> bool | None:
        return self._owner.eof_received()

    def pause_writing(self) -> None:
        self._owner.pause_writing()

    def resume_writing(self) -> None:
        self._owner.resume_writing()


def shared_buffer(loop: asyncio.AbstractEventLoop) -> SharedBuffer:
    """The loop's read buffer, made on first use and let go of with the loop."""
    buffer = _BUFFERS.get(loop)
    if buffer is None:
        buffer = _BUFFERS[loop] = SharedBuffer(READ_BYTES)
    return buffer
