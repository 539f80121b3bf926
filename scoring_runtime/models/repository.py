"""A folder of models, `<name>/<version>/`, each loaded on its first use and held within a memory budget.

Threads: every method may be called from any run thread, several at once. One lock guards the bookkeeping and is
never held across a load, a callback or a collection. Concurrent first requests for a model share one load; loads of
different models run in parallel unless a budget is set. With a budget, loads are serialized under a load lock:
what a model holds is the resident set's growth across its load, and two loads measured over the same window would
each count the other's memory (needless evictions) or miss what the other freed (a budget overrun); one load at a
time also keeps the transient peak to one model's. Memory dropped while a load is measured is freed by that load's
thread once its measure is taken, for the same reason.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import Generic, NoReturn, TypeVar

from scoring_runtime.errors import ModelLoadError, ModelUnavailable
from scoring_runtime.models import memory, repository_state as state
from scoring_runtime.models.repository_state import Entry, PendingLoad, RepositoryStats, Slot

logger = logging.getLogger("azmlinfsrv")

T = TypeVar("T")
MIB = 1024 * 1024


class ModelRepository(Generic[T]):
    """The models under `root`, loaded by `loader(name, version, folder)` on the thread of their first request.

    `budget_mb` caps the memory held by loaded models (measured, see memory.py): idle models are evicted least
    recently used first. `pinned` names are loaded by `load_pinned` and never evicted. `on_evict` is told of every
    model the repository drops, by budget or unload, after its last request.
    """

    def __init__(
        self,
        root: Path,
        loader: Callable[[str, str, Path], T],
        budget_mb: float | None = None,
        pinned: Collection[str] = (),
        on_evict: Callable[[T], None] | None = None,
    ) -> None:
        if budget_mb is not None and budget_mb <= 0:
            raise ValueError(f"The model memory budget must be positive, not {budget_mb} MB")
        self.root = root
        self._loader = loader
        self._budget = None if budget_mb is None else int(budget_mb * MIB)
        self._pinned = frozenset(pinned)
        self._lock = threading.Lock()
        self._reclaimer = memory.Reclaimer(self._budget is not None, on_evict)
        self._models: dict[str, dict[str, Slot[T]]] = {}
        self._held_bytes = 0  # the bytes of the models held now
        self._clock = 0  # ticks at every lease and release: the LRU order
        self._stats = RepositoryStats()
        if self._budget is not None and memory.resident_bytes() is None:
            logger.warning(
                "Model memory cannot be measured on this system: the budget of %s MB is not applied", budget_mb
            )
        self.rescan()

    def rescan(self) -> None:
        """Read `root` again: new models and versions become servable; vanished ones are dropped once idle."""
        found = state.scan(self.root)
        missing = sorted(self._pinned - found.keys())
        if missing:
            raise ModelLoadError(
                f"Pinned model(s) {', '.join(missing)} not found in {self.root}: found {', '.join(found)}"
            )
        dropped: list[T] = []
        with self._lock:
            self._models, gone = state.merge(self._models, found, self._pinned)
            for slot in gone:
                slot.removed = True  # one in use is dropped by its last release
                if slot.held and not slot.leases:
                    dropped.append(self._detach(slot, state.UNLOADED))
        self._reclaimer.dispose(dropped)

    def index(self) -> list[Entry]:
        """Every model version, by name then version, with its V2 state, the reason it is not READY, and its bytes."""
        with self._lock:
            return [state.describe(slot) for slot in state.ordered(self._models)]

    def loaded_bytes(self) -> int:
        """The memory held by the models loaded now, as measured across their loads."""
        with self._lock:
            return self._held_bytes

    @property
    def stats(self) -> RepositoryStats:
        """A copy of the counters: loads, failed loads, evictions, unloads, and seconds spent loading."""
        with self._lock:
            return dataclasses.replace(self._stats)

    @contextlib.contextmanager
    def lease(
        self, name: str, version: str | None = None, loader: Callable[[str, str, Path], T] | None = None
    ) -> Iterator[T]:
        """The model (`version` None: the latest), loaded if it is not, and never evicted until the block ends.

        Raises NotFound for an unknown name or version, ModelUnavailable if its load fails (the next request tries
        again) or it was unloaded. `loader` replaces the repository's for a load this call starts.
        """
        slot, value = self._acquire(name, version, loader or self._loader)
        try:
            yield value
        finally:
            del value  # this frame must not keep alive a model that the release drops
            self._release(slot)

    def load(self, name: str, version: str | None = None) -> None:
        """V2's load: serve the model again after `unload` (every version when `version` is None), and load it now."""
        with self._lock:
            slots = state.slots_of(self._models, name, version)
            for slot in slots:
                slot.unloaded = False  # one still in use (UNLOADING) is kept after all
                if slot.reason == state.UNLOADED:
                    slot.reason = state.NOT_LOADED
        with self.lease(name, version):
            pass

    def unload(self, name: str, version: str | None = None) -> None:
        """V2's unload: the model (every version when `version` is None) answers 503 until `load` is called; one in
        use is dropped when its last request ends."""
        dropped: list[T] = []
        with self._lock:
            slots = state.slots_of(self._models, name, version)
            for slot in slots:
                if not slot.unloaded:
                    self._stats.unloads += 1
                slot.unloaded = True
                if not slot.held:
                    slot.reason = state.UNLOADED
                elif not slot.leases:  # one in use is UNLOADING, and dropped by its last release
                    dropped.append(self._detach(slot, state.UNLOADED))
        self._reclaimer.dispose(dropped)

    def load_pinned(self) -> None:
        """Load the latest version of every pinned model; at start-up, where a failure stops the server."""
        for name in sorted(self._pinned):
            try:
                self.load(name)
            except ModelUnavailable as exc:
                raise ModelLoadError(f"Pinned model '{name}' cannot be loaded: {exc.message}") from exc

    def _acquire(self, name: str, version: str | None, loader: Callable[[str, str, Path], T]) -> tuple[Slot[T], T]:
        while True:
            with self._lock:
                slot = state.find(self._models, name, version)
                if slot.unloaded:
                    raise ModelUnavailable(f"Model '{slot.name}' version '{slot.version}' is {state.UNLOADED}")
                if slot.held:
                    slot.leases += 1
                    slot.last_used = self._tick()
                    return slot, slot.value  # type: ignore[return-value]  # held: the loaded value
                pending = slot.load
                if pending is None:
                    pending = slot.load = PendingLoad()
                    owner = True
                elif pending.owner == threading.get_ident():
                    raise ModelUnavailable(f"Model '{slot.name}' version '{slot.version}' is loading itself")
                else:
                    pending.waiters += 1
                    owner = False
            if owner:
                return slot, self._load(slot, pending, loader)
            try:
                pending.done.wait()
            except BaseException:  # interrupted (a run timeout): give back the lease the load may have counted
                with self._lock:
                    granted = pending.granted
                    if not granted:
                        pending.waiters -= 1
                if granted:
                    self._release(slot)
                raise
            if pending.granted:
                return slot, slot.value  # type: ignore[return-value]  # granted: loaded and leased
            if pending.error is not None:
                raise ModelUnavailable(pending.error)
            # Interrupted, or unloaded or evicted since: look again (this request may load it itself).

    def _load(self, slot: Slot[T], pending: PendingLoad, loader: Callable[[str, str, Path], T]) -> T:
        dropped: list[T] = []
        warn = False
        try:
            with self._reclaimer.measuring():
                if self._budget is not None:
                    with self._lock:  # a model loaded before needs about as much again: make room ahead of its peak
                        dropped = self._victims(keep=slot, extra=slot.bytes)
                    self._reclaimer.free(dropped)
                    memory.give_back()  # so that the load is not served from memory freed earlier, and measured
                before = memory.resident_bytes()
                started = time.monotonic()
                try:
                    value = loader(slot.name, slot.version, slot.folder)
                except Exception as exc:
                    self._failed(slot, pending, exc)
                seconds = time.monotonic() - started
                after = memory.resident_bytes()
                measured = max(0, after - before) if after is not None and before is not None else 0
                with self._lock:
                    self._stats.loads += 1
                    self._stats.load_seconds += seconds
                    slot.load = None
                    if slot.unloaded or slot.removed:
                        pending.error = f"Model '{slot.name}' version '{slot.version}' was unloaded while it loaded"
                        slot.reason = state.UNLOADED
                    else:
                        slot.value, slot.held, slot.bytes, slot.reason = value, True, measured, ""
                        self._held_bytes += measured
                        slot.leases += 1 + pending.waiters
                        slot.last_used = self._tick()
                        pending.granted = True
                        dropped = self._victims(keep=slot)
                        warn = self._budget is not None and measured > self._budget and not slot.warned
                        slot.warned = slot.warned or warn
                    pending.done.set()
                self._reclaimer.free(dropped)
        finally:
            if not pending.done.is_set():  # interrupted (a run timeout): a waiting request loads it instead
                with self._lock:
                    slot.load, slot.reason = None, state.INTERRUPTED
                    pending.done.set()
        logger.info("Loaded model %s version %s in %.2f s (%.1f MB)", slot.name, slot.version, seconds, measured / MIB)
        if not pending.granted:
            unwanted = [value]
            del value
            self._reclaimer.dispose(unwanted)
            raise ModelUnavailable(pending.error or state.UNLOADED)
        if warn:
            logger.warning(
                "Model %s version %s alone takes %.0f MB, over the model memory budget of %.0f MB: it is served, "
                "and every other idle model is evicted",
                *(slot.name, slot.version, measured / MIB, (self._budget or 0) / MIB),
            )
        return value

    def _failed(self, slot: Slot[T], pending: PendingLoad, exc: Exception) -> NoReturn:
        reason = f"Model '{slot.name}' version '{slot.version}' failed to load: {type(exc).__name__}: {exc}"
        logger.error("%s", reason, exc_info=exc)
        with self._lock:
            self._stats.failed_loads += 1
            slot.load, slot.reason, pending.error = None, reason, reason
            pending.done.set()
        raise ModelUnavailable(reason) from exc

    def _release(self, slot: Slot[T]) -> None:
        with self._lock:
            slot.leases -= 1
            slot.last_used = self._tick()
            if slot.leases:
                return
            if slot.unloaded or slot.removed:
                dropped = [self._detach(slot, state.UNLOADED)] if slot.held else []
            else:  # over budget after a load while the others were in use: evict now that one is free
                dropped = self._victims(keep=slot)
        self._reclaimer.dispose(dropped)

    def _victims(self, keep: Slot[T], extra: int = 0) -> list[T]:
        """Under the lock: detach what `state.evictable` picks so that the held models and `extra` fit the budget."""
        if self._budget is None or self._held_bytes + extra <= self._budget:
            return []
        dropped: list[T] = []
        for slot in state.evictable(self._models, keep, self._held_bytes + extra - self._budget):
            logger.info(
                "Evicting model %s version %s (%.1f MB) for the budget", slot.name, slot.version, slot.bytes / MIB
            )
            self._stats.evictions += 1
            dropped.append(self._detach(slot, state.EVICTED))
        return dropped

    def _detach(self, slot: Slot[T], reason: str) -> T:
        """Under the lock: the repository lets go of the model; its memory goes once nothing else holds it."""
        value = slot.value
        slot.value, slot.held, slot.reason = None, False, reason
        self._held_bytes -= slot.bytes
        return value  # type: ignore[return-value]  # held until now

    def _tick(self) -> int:
        self._clock += 1
        return self._clock
