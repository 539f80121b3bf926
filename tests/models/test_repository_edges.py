"""The multi-model repository at its edges: bad settings, a system without /proc, folders that vanish, models that
fail or load themselves, requests interrupted while they wait for a load, and disposal around a measured load."""

from __future__ import annotations

import logging
import shutil
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

from scoring_runtime.errors import ModelLoadError, ModelUnavailable
from scoring_runtime.models import memory, script_models
from scoring_runtime.models.repository import ModelRepository
from tests.models.repository_helpers import Held, Loader, entries, tree, wait_until


class Gated:
    """A loader whose loads wait for `gate`; `started` is set once a load has begun."""

    def __init__(self) -> None:
        self.gate, self.started = threading.Event(), threading.Event()

    def __call__(self, name: str, version: str, folder: Path) -> Held:
        self.started.set()
        assert self.gate.wait(10)
        return Held(name, version)


def test_a_budget_must_be_positive(tmp_path: Path) -> None:
    for budget in (0, -5.0):
        with pytest.raises(ValueError, match=f"^The model memory budget must be positive, not {budget} MB$"):
            ModelRepository(tree(tmp_path, {}), Loader(), budget_mb=budget)


def test_the_root_must_be_a_folder(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(ModelLoadError, match=f"^The model repository {missing} is not a folder$"):
        ModelRepository(missing, Loader())
    afile = tmp_path / "models.txt"
    afile.write_text("")
    with pytest.raises(ModelLoadError, match="is not a folder"):
        ModelRepository(afile, Loader())


def test_without_proc_the_budget_is_not_applied_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(memory, "_STATM", str(tmp_path / "no-proc" / "statm"))  # as on a system without /proc
    assert memory.resident_bytes() is None
    evicted: list[str] = []
    with caplog.at_level(logging.WARNING, logger="azmlinfsrv"):
        repository = ModelRepository(
            tree(tmp_path / "models", {"a": ["1"], "b": ["1"]}),
            Loader(),
            budget_mb=1,
            on_evict=lambda model: evicted.append(model.name),
        )
    assert "Model memory cannot be measured on this system: the budget of 1 MB is not applied" in caplog.messages
    for name in ("a", "b"):
        with repository.lease(name) as model:
            assert model.name == name
    assert repository.loaded_bytes() == 0 and evicted == []  # nothing measured, nothing evicted
    assert {entry.state for entry in repository.index()} == {"READY"}


def test_a_vanished_idle_model_is_dropped_at_rescan(tmp_path: Path) -> None:
    evicted: list[str] = []
    root = tree(tmp_path, {"a": ["1"], "b": ["1"]})
    repository = ModelRepository(root, Loader(), on_evict=lambda model: evicted.append(model.name))
    for name in ("a", "b"):
        with repository.lease(name):
            pass
    shutil.rmtree(root / "a")
    repository.rescan()
    assert evicted == ["a"]
    assert list(entries(repository)) == ["b/1"]


def test_unloading_twice_counts_one_unload(tmp_path: Path) -> None:
    repository = ModelRepository(tree(tmp_path, {"a": ["1", "2"]}), Loader())
    repository.unload("a", "1")
    repository.unload("a", "1")
    assert repository.stats.unloads == 1
    repository.unload("a")  # version 1 again, and version 2
    assert repository.stats.unloads == 2
    with pytest.raises(ModelUnavailable, match="version '2' is unloaded"):
        with repository.lease("a"):
            pass


def test_a_pinned_model_that_fails_to_load_stops_the_start(tmp_path: Path) -> None:
    def broken(name: str, version: str, folder: Path) -> Held:
        raise OSError(f"cannot read {folder / 'model.pkl'}")

    repository = ModelRepository(tree(tmp_path, {"a": ["1"]}), broken, pinned=["a"])
    with pytest.raises(ModelLoadError) as caught:
        repository.load_pinned()
    assert str(caught.value) == (
        "Pinned model 'a' cannot be loaded: Model 'a' version '1' failed to load: OSError: cannot read "
        f"{tmp_path / 'a' / '1' / 'model.pkl'}"
    )


@pytest.fixture
def script_api() -> Iterator[None]:
    yield
    script_models.configure(None)


def test_a_loader_that_loads_its_own_model_fails_instead_of_hanging(tmp_path: Path, script_api: None) -> None:
    def recursive(folder: Path) -> Any:
        return script_models.load_model("a")  # a script's loader asking for the model it is loading

    repository = ModelRepository(tree(tmp_path, {"a": ["1"]}), Loader())
    script_models.configure(repository)
    with pytest.raises(ModelUnavailable) as caught:
        script_models.load_model("a", loader=recursive)
    assert caught.value.message == (
        "Model 'a' version '1' failed to load: ModelUnavailable: Model 'a' version '1' is loading itself"
    )
    assert script_models.load_model("a").name == "a"  # the next request loads it


class Interrupted(BaseException):
    """Raised in the main thread while it waits for another request's load, as a run timeout is."""


def wait_interrupted(repository: ModelRepository[Any], loader: Gated, finish_load_first: bool) -> list[str]:
    """Lease `a` in the main thread while a second thread loads it; interrupt the main thread's wait, either before
    the load ends or once it has ended (and counted the waiter's lease). Returns what the loading thread saw."""
    seen: list[str] = []

    def first() -> None:
        with repository.lease("a") as model:
            seen.append(model.name)

    def interrupt(signum: int, frame: FrameType | None) -> None:
        if finish_load_first:
            loader.gate.set()
            thread.join(10)  # the load is granted to the waiter, and the loading request has ended
            assert seen == ["a"] and entries(repository)["a/1"].leases == 1
        raise Interrupted

    thread = threading.Thread(target=first, daemon=True)
    previous = signal.signal(signal.SIGUSR1, interrupt)
    try:
        thread.start()
        assert loader.started.wait(10)
        main = threading.get_ident()

        def poke() -> None:
            wait_until(lambda: entries(repository)["a/1"].waiting == 1)
            signal.pthread_kill(main, signal.SIGUSR1)

        threading.Thread(target=poke, daemon=True).start()
        with pytest.raises(Interrupted):
            with repository.lease("a"):
                raise AssertionError("the lease was interrupted")
    finally:
        signal.signal(signal.SIGUSR1, previous)
    loader.gate.set()
    thread.join(10)
    return seen


@pytest.mark.parametrize("finish_load_first", [False, True])
def test_an_interrupted_wait_for_a_load_leaves_no_lease_behind(tmp_path: Path, finish_load_first: bool) -> None:
    evicted: list[str] = []
    loader = Gated()
    repository = ModelRepository(
        tree(tmp_path, {"a": ["1"]}), loader, on_evict=lambda model: evicted.append(model.name)
    )
    assert wait_interrupted(repository, loader, finish_load_first) == ["a"]
    entry = entries(repository)["a/1"]
    assert (entry.state, entry.leases, entry.waiting) == ("READY", 0, 0)
    repository.unload("a")  # idle: dropped at once, not kept as UNLOADING for a lease nobody holds
    assert evicted == ["a"] and entries(repository)["a/1"].state == "UNAVAILABLE"


def test_a_model_dropped_during_a_measured_load_is_freed_after_it(tmp_path: Path) -> None:
    evicted: list[str] = []
    loader = Gated()
    loader.gate.set()
    repository = ModelRepository(
        tree(tmp_path, {"a": ["1"], "b": ["1"]}),
        loader,
        budget_mb=10_000,
        on_evict=lambda model: evicted.append(model.name),
    )
    with repository.lease("a"):
        pass
    loader.gate.clear()
    loader.started.clear()
    done: list[str] = []

    def load_b() -> None:
        with repository.lease("b") as model:
            done.append(model.name)

    thread = threading.Thread(target=load_b, daemon=True)
    thread.start()
    assert loader.started.wait(10)
    repository.unload("a")  # while b's load is being measured: a's memory must not shrink b's measure
    assert evicted == [] and entries(repository)["a/1"].state == "UNAVAILABLE"
    loader.gate.set()
    thread.join(10)
    assert done == ["b"] and evicted == ["a"]


def test_a_failing_on_evict_is_logged_and_the_models_are_still_dropped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    told: list[str] = []

    def on_evict(model: Held) -> None:
        told.append(model.name)
        raise RuntimeError("cleanup failed")

    repository = ModelRepository(tree(tmp_path, {"a": ["1"], "b": ["1"]}), Loader(), on_evict=on_evict)
    for name in ("a", "b"):
        with repository.lease(name):
            pass
    with caplog.at_level(logging.ERROR, logger="azmlinfsrv"):
        repository.unload("a")
        repository.unload("b")
    assert told == ["a", "b"]
    assert caplog.messages.count("on_evict failed for a dropped model") == 2
    assert {entry.state for entry in repository.index()} == {"UNAVAILABLE"}
    assert repository.loaded_bytes() == 0
