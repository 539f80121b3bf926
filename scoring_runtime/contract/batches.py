"""Calls that run together: jobs of one kind that wait for a run thread at the same time are handed to a single
call of a function taking them all.

Nothing waits for a batch to fill. A batch is whatever queued up while the run threads were busy: an idle server
answers each request alone, as soon as it arrives, and a busy one makes one call where it would have made many. For
a model whose every call pays a fixed cost (scikit-learn checks its input on each predict, whatever the row count),
that fixed cost is then paid once per batch instead of once per request.
"""

from __future__ import annotations

import asyncio
import collections
import threading
from collections.abc import Callable, Sequence
from typing import Any

from scoring_runtime.contract.completions import Completions, Settle, set_exception, set_result

# The outcomes of a batch: one per argument, in order; an exception instance fails that argument's call alone.
Handler = Callable[[list[Any]], Sequence[Any]]


class BatchItem:
    """One call waiting in a batch: its argument, and where its outcome goes."""

    __slots__ = ("argument", "claimed", "completions", "future")

    def __init__(self, argument: Any, future: asyncio.Future[Any], completions: Completions) -> None:
        self.argument = argument
        self.future = future
        self.completions = completions
        self.claimed = False


class Batch:
    """One kind of batched call: `handle` takes the arguments of up to `max_size` calls at once.

    Every item also has a job of its own in the run threads' queue, in arrival order. The thread that takes an item's
    job claims that item with those waiting behind it; a job whose item another thread has claimed does nothing. So
    items are answered in the order they came, each exactly once, and the queue's accounting of what is outstanding
    stays the same as without batches.
    """

    def __init__(self, handle: Handler, max_size: int) -> None:
        if max_size < 1:
            raise ValueError("a batch holds at least one call")
        self.handle = handle
        self.max_size = max_size
        self._waiting: collections.deque[BatchItem] = collections.deque()
        self._lock = threading.Lock()

    def add(self, item: BatchItem) -> None:
        self._waiting.append(item)

    def claim(self, item: BatchItem) -> list[BatchItem]:
        """On a run thread that has taken `item`'s job: the items to run now, `item` first, then those waiting longest;
        none when another thread has claimed `item` already. `item` is nearly always the oldest waiting: only an item
        whose job another thread took a moment earlier, and has not claimed yet, can be ahead of it."""
        with self._lock:
            if item.claimed:
                return []
            waiting = self._waiting
            if waiting[0] is item:
                waiting.popleft()
            else:
                waiting.remove(item)
            item.claimed = True
            taken = [item]
            while waiting and len(taken) < self.max_size:
                other = waiting.popleft()
                other.claimed = True
                taken.append(other)
            return taken

    def withdraw(self, item: BatchItem) -> bool:
        """Take back an item no thread has claimed (its worker is being replaced); False when one has."""
        with self._lock:
            if item.claimed:
                return False
            item.claimed = True
            self._waiting.remove(item)
            return True

    def __len__(self) -> int:
        return len(self._waiting)


def live(items: list[BatchItem]) -> list[BatchItem]:
    """The claimed items still awaited; those whose client has had its answer (a timeout) are settled unstarted."""
    live = []
    for item in items:
        if item.future.done():
            item.completions.add(set_result, item.future, None)
        else:
            live.append(item)
    return live


def settle_each(items: list[BatchItem], settle: Settle, value: Any) -> None:
    """A batch's outcomes to its items: one each, or the exception that ended the whole call to all of them."""
    if settle is set_result and (not isinstance(value, (list, tuple)) or len(value) != len(items)):
        settle, value = set_exception, RuntimeError(f"a batch of {len(items)} calls answered {value!r:.80}")
    for index, item in enumerate(items):
        if settle is set_exception:
            item.completions.add(set_exception, item.future, value)
        else:
            outcome = value[index]
            chosen = set_exception if isinstance(outcome, BaseException) else set_result
            item.completions.add(chosen, item.future, outcome)
