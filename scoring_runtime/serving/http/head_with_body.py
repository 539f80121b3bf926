"""A response's head and the first piece of its body, sent in one write."""

from __future__ import annotations

import asyncio


class HeadWithBody:
    """The transport as one response cycle sees it: the cycle's first write (the response head) is held back until
    its second (the body, or its first chunk), and both leave in one system call.

    uvicorn writes the head and the body separately, so a small answer costs two sends and two TCP segments, each
    processed on both ends. A held write goes out on its own at the end of the loop pass if nothing follows it in
    that pass (a streamed response whose first chunk is not ready yet, a `100 Continue`), and before a close.
    """

    __slots__ = ("_transport", "_loop", "_held", "_first")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None
        self._first = True

    def write(self, data: bytes) -> None:
        if self._first:
            self._first = False
            self._held = data
            self._loop.call_soon(self._release)
            return
        held = self._held
        if held is None:
            self._transport.write(data)
        elif data:
            self._held = None
            self._transport.writelines((held, data))
        # An empty body leaves the head held for the end of the pass: CPython 3.12.0-3.12.1's writelines() keeps an
        # empty piece in its buffer for good, and close() then waits on it forever.

    def _release(self) -> None:
        held = self._held
        if held is not None:
            self._held = None
            if not self._transport.is_closing():
                self._transport.write(held)

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def close(self) -> None:
        self._release()
        self._transport.close()
