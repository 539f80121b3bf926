"""How run threads hand finished jobs back to the event loop that is waiting for them."""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable
from typing import Any

Settle = Callable[[asyncio.Future[Any], Any], None]


class Completions:
    """Finished jobs of one event loop, handed back in batches: one wake-up of the loop (a write to its self-pipe)
    per batch instead of one per job. Under load several jobs finish while the loop is busy, and they share it."""

    __slots__ = ("_drain_scheduled", "_items", "_on_settled", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop, on_settled: Callable[[], None]) -> None:
        self.loop = loop
        self._items: collections.deque[tuple[Settle, asyncio.Future[Any], Any]] = collections.deque()
        self._drain_scheduled = False
        self._on_settled = on_settled

    def add(self, settle: Settle, future: asyncio.Future[Any], value: Any) -> None:
        """On a run thread. Appending before reading the flag means a drain that has already cleared it either
        sees this item or is followed by the one scheduled here."""
        self._items.append((settle, future, value))
        if not self._drain_scheduled:
            self._drain_scheduled = True
            try:
                self.loop.call_soon_threadsafe(self._drain)
            except RuntimeError:
                pass  # The loop has closed (shutdown while a run() was still going); nobody is waiting.

    def _drain(self) -> None:
        self._drain_scheduled = False
        items = self._items
        while items:
            settle, future, value = items.popleft()
            self._on_settled()
            settle(future, value)


def set_result(future: asyncio.Future[Any], result: Any) -> None:
    if not future.done():
        future.set_result(result)


def set_exception(future: asyncio.Future[Any], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)
