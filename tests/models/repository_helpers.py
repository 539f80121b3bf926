"""What the multi-model repository's tests share: model folders on disk, a counting loader, the index by key, and a
wait for states other threads reach."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from scoring_runtime.models.repository import ModelRepository
from scoring_runtime.models.repository_state import Entry

MB = 1024 * 1024


class Held:
    """A loaded test model: `mb` megabytes of resident numpy memory."""

    def __init__(self, name: str, version: str, mb: int = 0) -> None:
        self.name, self.version = name, version
        self.data = np.ones(mb * MB // 8) if mb else None


class Loader:
    """Counts its calls; each model takes `mb` MB. `gate` (if set) holds the first call until it is set; `fail`
    makes the first call raise it."""

    def __init__(self, mb: int = 0, gate: threading.Event | None = None, fail: BaseException | None = None) -> None:
        self.mb, self.gate, self.fail = mb, gate, fail
        self.calls: list[tuple[str, str, Path]] = []
        self.started = threading.Event()

    def __call__(self, name: str, version: str, folder: Path) -> Held:
        self.calls.append((name, version, folder))
        first = len(self.calls) == 1
        self.started.set()
        if first and self.gate is not None:
            self.gate.wait()
        if first and self.fail is not None:
            raise self.fail
        return Held(name, version, self.mb)


def tree(root: Path, layout: dict[str, list[str]]) -> Path:
    for name, versions in layout.items():
        for version in versions:
            (root / name / version).mkdir(parents=True)
    return root


def entries(repository: ModelRepository[Any]) -> dict[str, Entry]:
    return {f"{entry.name}/{entry.version}": entry for entry in repository.index()}


def wait_until(condition: Callable[[], bool]) -> None:
    """Until other threads reach a state no event marks (waiting on a load); fails after ~10 s rather than hang."""
    pause = threading.Event()
    for _ in range(10_000):
        if condition():
            return
        pause.wait(0.001)
    raise AssertionError("the threads never got there")
