"""What the model repository knows of each model version: its folder, its state, and the numbers it reports.

The `<name>/<version>/` folders are scanned here, versions ordered, and names resolved into the NotFound messages
clients see. The repository (repository.py) changes these records under its lock.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, TypeVar

from scoring_runtime.errors import ModelLoadError, NotFound

logger = logging.getLogger("azmlinfsrv")

T = TypeVar("T")

# The states of the Open Inference Protocol's model repository extension (as Triton reports them).
UNAVAILABLE = "UNAVAILABLE"
LOADING = "LOADING"
READY = "READY"
UNLOADING = "UNLOADING"

# Why a model is UNAVAILABLE.
NOT_LOADED = "not loaded yet: loads on first use"
EVICTED = "evicted to keep within the memory budget: loads on next use"
UNLOADED = "unloaded: load it through the repository API to serve it again"
INTERRUPTED = "its load was interrupted: loads on next use"


@dataclass(frozen=True)
class Entry:
    """A model version in the repository's index."""

    name: str
    version: str
    state: str  # UNAVAILABLE, LOADING, READY or UNLOADING
    reason: str  # why it is not READY ("" when it is): not loaded yet, evicted, unloaded, or its load's failure
    bytes: int  # the resident memory its last load added (0 before its first)
    leases: int  # requests using it now
    waiting: int  # requests waiting for its load
    pinned: bool


@dataclass
class RepositoryStats:
    """Counters for logs and metrics."""

    loads: int = 0
    failed_loads: int = 0
    evictions: int = 0  # by the memory budget
    unloads: int = 0  # through the repository API
    load_seconds: float = 0.0


class PendingLoad:
    """One load in progress, shared by the requests that wait for it."""

    __slots__ = ("done", "error", "granted", "owner", "waiters")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.error: str | None = None  # why it failed, for every request that waited on it
        self.granted = False  # loaded, with each waiter's lease already counted
        self.waiters = 0
        self.owner = threading.get_ident()


@dataclass(eq=False)
class Slot(Generic[T]):
    """A model version and what the repository holds of it."""

    name: str
    version: str
    folder: Path
    pinned: bool
    reason: str  # why it is UNAVAILABLE
    value: T | None = None
    held: bool = False  # `value` is the loaded model (which may itself be None)
    bytes: int = 0
    leases: int = 0
    last_used: int = 0
    load: PendingLoad | None = None
    unloaded: bool = False  # through the repository API: 503 until loaded again
    removed: bool = False  # its folder has gone (rescan)
    warned: bool = field(default=False)  # over the budget on its own, said once


def describe(slot: Slot[T]) -> Entry:
    if slot.load is not None:
        state, reason = LOADING, ""
    elif slot.held and (slot.unloaded or slot.removed):
        state, reason = UNLOADING, f"unloaded: dropped once its {slot.leases} request(s) end"
    elif slot.held:
        state, reason = READY, ""
    else:
        state, reason = UNAVAILABLE, slot.reason
    waiting = slot.load.waiters if slot.load is not None else 0
    return Entry(slot.name, slot.version, state, reason, slot.bytes, slot.leases, waiting, slot.pinned)


def version_order(versions: Iterable[str]) -> list[str]:
    """Oldest first: numerically when every version is an integer, else lexicographically."""
    names = list(versions)
    if all(name.isascii() and name.isdigit() for name in names):
        return sorted(names, key=lambda name: (int(name), name))
    return sorted(names)


def find(models: Mapping[str, Mapping[str, Slot[T]]], name: str, version: str | None) -> Slot[T]:
    """The slot of `name` at `version` (None: the latest); NotFound says what there is instead."""
    versions = models.get(name)
    if versions is None:
        available = ", ".join(sorted(models)) or "none"
        raise NotFound(f"Model '{name}' not found. Available models: {available}")
    if version is None:
        return versions[version_order(versions)[-1]]
    slot = versions.get(version)
    if slot is None:
        raise NotFound(
            f"Model '{name}' has no version '{version}'. Available versions: {', '.join(version_order(versions))}"
        )
    return slot


def ordered(models: Mapping[str, Mapping[str, Slot[T]]]) -> list[Slot[T]]:
    """Every slot, by name then version."""
    return [versions[version] for _, versions in sorted(models.items()) for version in version_order(versions)]


def merge(
    old: Mapping[str, Mapping[str, Slot[T]]], found: Mapping[str, Mapping[str, Path]], pinned: Collection[str]
) -> tuple[dict[str, dict[str, Slot[T]]], list[Slot[T]]]:
    """The slots of the version folders `found`, the known ones kept; and the known ones whose folder has gone."""
    models = {
        name: {
            version: old.get(name, {}).get(version) or Slot(name, version, folder, name in pinned, NOT_LOADED)
            for version, folder in folders.items()
        }
        for name, folders in found.items()
    }
    gone = [
        slot
        for name, versions in old.items()
        for version, slot in versions.items()
        if version not in found.get(name, {})
    ]
    return models, gone


def slots_of(models: Mapping[str, Mapping[str, Slot[T]]], name: str, version: str | None) -> list[Slot[T]]:
    """The slot of `name` at `version`, or every version of `name` when `version` is None."""
    if version is not None:
        return [find(models, name, version)]
    find(models, name, None)  # NotFound for an unknown name
    return list(models[name].values())


def evictable(models: Mapping[str, Mapping[str, Slot[T]]], keep: Slot[T], excess: int) -> list[Slot[T]]:
    """Idle, unpinned, loaded models, least recently used first, until their bytes cover `excess` (or none are
    left). `keep`, the model being loaded or just used, is not one of them."""
    chosen: list[Slot[T]] = []
    held = (slot for versions in models.values() for slot in versions.values() if slot.held)
    for slot in sorted(held, key=lambda slot: slot.last_used):
        if excess <= 0:
            break
        if slot is not keep and not slot.leases and not slot.pinned:
            chosen.append(slot)
            excess -= slot.bytes
    return chosen


def scan(root: Path) -> dict[str, dict[str, Path]]:
    """The version folders of each model folder under `root`; hidden folders and files are not models."""
    if not root.is_dir():
        raise ModelLoadError(f"The model repository {root} is not a folder")
    found: dict[str, dict[str, Path]] = {}
    for model in sorted(root.iterdir()):
        if model.name.startswith(".") or not model.is_dir():
            continue
        versions = {path.name: path for path in model.iterdir() if path.is_dir() and not path.name.startswith(".")}
        if versions:
            found[model.name] = versions
        else:
            logger.warning("Model folder %s has no version folders (<name>/<version>/): it is not served", model)
    return found
