"""Reading a connection into one buffer per event loop, shared by all of its connections.

For a plain asyncio Protocol, uvloop reads into a buffer of its own and copies each read into a new bytes object
for `data_received`; the HTTP parser then copies every body piece out of that into another. A BufferedProtocol is
read into a buffer it names instead. The HTTP protocol here names one buffer per event loop, which its connections
share: a read is parsed (and every part worth keeping copied out by the parser) before the loop reads anything
else, so no connection's bytes outlive the call that hands them over.

uvloop only reads into the buffer of a protocol that is not an `asyncio.Protocol`, as uvicorn's protocol is; so a
`SharedReader` stands in for it on the transport and passes it each read and every other connection event.
"""

from __future__ import annotations

import asyncio
from typing import Generic, Protocol, TypeVar
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


class ConnectionOwner(Protocol):
    """The protocol a stand-in reads for: it gets the connection's events other than reads."""

    def connection_lost(self, exc: Exception | None) -> None: ...

    def eof_received(self) -> bool | None: ...

    def pause_writing(self) -> None: ...

    def resume_writing(self) -> None: ...


class ReadOwner(ConnectionOwner, Protocol):
    def shared_read(self, buffer: SharedBuffer, nbytes: int) -> None:
        """`nbytes` were read into the start of `buffer`; they may be overwritten as soon as this returns."""


Owner = TypeVar("Owner", bound=ConnectionOwner)


class StandIn(asyncio.BufferedProtocol, Generic[Owner]):
    """A transport's protocol that reads for another one and passes it every other connection event."""

    __slots__ = ("_owner",)

    def __init__(self, owner: Owner) -> None:
        self._owner = owner

    def connection_lost(self, exc: Exception | None) -> None:
        self._owner.connection_lost(exc)

    def eof_received(self) -> bool | None:
        return self._owner.eof_received()

    def pause_writing(self) -> None:
        self._owner.pause_writing()

    def resume_writing(self) -> None:
        self._owner.resume_writing()


class SharedReader(StandIn[ReadOwner]):
    """Reads a connection into its event loop's shared buffer, for a `ReadOwner`."""

    __slots__ = ("_buffer",)

    def __init__(self, owner: ReadOwner, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(owner)
        self._buffer = shared_buffer(loop)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._buffer.view

    def buffer_updated(self, nbytes: int) -> None:
        self._owner.shared_read(self._buffer, nbytes)


def shared_buffer(loop: asyncio.AbstractEventLoop) -> SharedBuffer:
    """The loop's read buffer, made on first use and let go of with the loop."""
    buffer = _BUFFERS.get(loop)
    if buffer is None:
        buffer = _BUFFERS[loop] = SharedBuffer(READ_BYTES)
    return buffer
