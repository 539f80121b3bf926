"""The multi-model repository: lazy loads, versions, shared loads, the memory budget, unload/load, and the script API.

Memory is measured for real (the resident set across each load), so the models here allocate tens of megabytes of
numpy arrays, whose pages are written (np.ones) and so resident; bounds are tolerant of the interpreter's own noise.
"""

from __future__ import annotations

import ctypes
import logging
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from scoring_runtime.contract.interrupts import RunTimedOut
from scoring_runtime.errors import ModelLoadError, ModelNotFoundError, ModelUnavailable, NotFound
from scoring_runtime.models import memory, script_models
from scoring_runtime.models.repository import ModelRepository
from scoring_runtime.models.repository_state import EVICTED, NOT_LOADED, UNLOADED
from scoring_runtime.serving.process import keep_freed_memory
from tests.models.repository_helpers import MB, Loader, entries, tree, wait_until


def in_threads(count: int, target: Callable[[], Any]) -> tuple[list[threading.Thread], list[Any]]:
    """Start `count` threads running `target`; each appends its result or its exception to the returned list."""
    outcomes: list[Any] = []

    def run() -> None:
        try:
            outcomes.append(target())
        except BaseException as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=run, daemon=True) for _ in range(count)]  # daemon: a failure cannot hang
    for thread in threads:
        thread.start()
    return threads, outcomes


def test_a_model_is_loaded_on_its_first_lease_only(tmp_path: Path) -> None:
    loader = Loader()
    repository = ModelRepository(tree(tmp_path, {"a": ["1"], "b": ["1"]}), loader)
    assert loader.calls == []
    assert {entry.state for entry in repository.index()} == {"UNAVAILABLE"}
    assert entries(repository)["a/1"].reason == NOT_LOADED
    with repository.lease("a") as model:
        assert (model.name, model.version) == ("a", "1")
        assert entries(repository)["a/1"].state == "READY" and entries(repository)["a/1"].leases == 1
    with repository.lease("a", "1"):
        pass
    assert loader.calls == [("a", "1", tmp_path / "a" / "1")]
    assert entries(repository)["a/1"].leases == 0 and entries(repository)["b/1"].state == "UNAVAILABLE"
    assert repository.stats.loads == 1


@pytest.mark.parametrize(
    ("versions", "latest"),
    [(["1", "2", "10", "9"], "10"), (["v1", "v2", "v10"], "v2"), (["1", "10", "x"], "x"), (["01", "1"], "1")],
)
def test_latest_is_the_highest_version_numerically_when_all_are_integers(
    tmp_path: Path, versions: list[str], latest: str
) -> None:
    loader = Loader()
    repository = ModelRepository(tree(tmp_path, {"m": versions}), loader)
    with repository.lease("m") as model:
        assert model.version == latest


def test_hidden_folders_files_and_empty_models_are_not_served(tmp_path: Path) -> None:
    root = tree(tmp_path, {"a": ["1", ".99"], ".cache": ["5"], "empty": []})
    (root / "empty").mkdir()
    (root / "a" / "7").write_text("a file, not a version")
    (root / "README.md").write_text("not a model")
    repository = ModelRepository(root, Loader())
    assert [(entry.name, entry.version) for entry in repository.index()] == [("a", "1")]


def test_unknown_names_and_versions_say_what_there_is(tmp_path: Path) -> None:
    repository = ModelRepository(tree(tmp_path, {"b": ["1"], "a": ["10", "2"]}), Loader())
    with (
        pytest.raises(NotFound, match=r"Model 'c' not found\. Available models: a, b$") as raised,
        repository.lease("c"),
    ):
        pass
    assert raised.value.status_code == 404
    with pytest.raises(NotFound, match=r"Model 'a' has no version '3'\. Available versions: 2, 10$"):
        repository.unload("a", "3")


def test_concurrent_first_leases_share_one_load(tmp_path: Path) -> None:
    gate, holding = threading.Event(), threading.Barrier(5)
    loader = Loader(gate=gate)
    repository = ModelRepository(tree(tmp_path, {"a": ["1"]}), loader)

    def use() -> int:
        with repository.lease("a") as model:
            holding.wait()  # all four hold their lease at once
            holding.wait()
            return id(model)

    threads, ids = in_threads(4, use)
    loader.started.wait()
    wait_until(lambda: entries(repository)["a/1"].waiting == 3)
    assert entries(repository)["a/1"].state == "LOADING"
    gate.set()
    holding.wait()
    assert entries(repository)["a/1"].leases == 4  # the waiters' leases were counted by the load they waited on
    holding.wait()
    for thread in threads:
        thread.join()
    assert len(loader.calls) == 1 and len(set(ids)) == 1 and repository.stats.loads == 1
    assert entries(repository)["a/1"].leases == 0


def test_a_failed_load_fails_every_waiter_and_the_next_request_tries_again(tmp_path: Path) -> None:
    gate = threading.Event()
    loader = Loader(gate=gate, fail=ValueError("corrupt file"))
    repository = ModelRepository(tree(tmp_path, {"a": ["1"]}), loader)

    def use() -> str:
        with repository.lease("a") as model:
            return model.name

    threads, outcomes = in_threads(3, use)
    loader.started.wait()
    wait_until(lambda: entries(repository)["a/1"].waiting == 2)
    gate.set()
    for thread in threads:
        thread.join()
    assert [type(outcome) for outcome in outcomes] == [ModelUnavailable] * 3
    assert all("failed to load: ValueError: corrupt file" in outcome.message for outcome in outcomes)
    assert outcomes[0].status_code == 503
    entry = entries(repository)["a/1"]
    assert entry.state == "UNAVAILABLE" and "corrupt file" in entry.reason
    assert use() == "a"
    assert len(loader.calls) == 2 and repository.stats.failed_loads == 1 and repository.stats.loads == 1


def test_an_interrupted_load_is_taken_over_by_a_waiting_request(tmp_path: Path) -> None:
    gate = threading.Event()
    loader = Loader(gate=gate, fail=RunTimedOut())  # as a run timeout lands inside the load
    repository = ModelRepository(tree(tmp_path, {"a": ["1"]}), loader)

    def use() -> str:
        with repository.lease("a") as model:
            return model.name

    threads, outcomes = in_threads(2, use)
    loader.started.wait()
    wait_until(lambda: entries(repository)["a/1"].waiting == 1)
    gate.set()
    for thread in threads:
        thread.join()
    assert sorted(map(type, outcomes), key=str) == sorted([RunTimedOut, str], key=str)
    assert len(loader.calls) == 2 and entries(repository)["a/1"].state == "READY"


def test_idle_models_are_evicted_least_recently_used_first(tmp_path: Path) -> None:
    evicted: list[str] = []
    repository = ModelRepository(
        tree(tmp_path, {"a": ["1"], "b": ["1"], "c": ["1"]}),
        Loader(mb=40),
        budget_mb=100,
        on_evict=lambda model: evicted.append(model.name),
    )
    for name in ("a", "b", "a", "c"):  # a is used again after b: b is the least recently used when c comes
        with repository.lease(name):
            pass
    assert evicted == ["b"]
    index = entries(repository)
    assert [index[key].state for key in ("a/1", "b/1", "c/1")] == ["READY", "UNAVAILABLE", "READY"]
    assert index["b/1"].reason == EVICTED
    assert all(30 * MB <= index[key].bytes <= 60 * MB for key in ("a/1", "b/1", "c/1")), index
    assert 60 * MB <= repository.loaded_bytes() <= 100 * MB
    with repository.lease("b"):  # an eviction does not stick: b loads again, and a (used before c) goes
        pass
    assert evicted == ["b", "a"] and repository.stats.evictions == 2 and repository.stats.loads == 4


def test_a_model_in_use_is_never_evicted(tmp_path: Path) -> None:
    evicted: list[str] = []
    repository = ModelRepository(
        tree(tmp_path, {"a": ["1"], "b": ["1"]}),
        Loader(mb=40),
        budget_mb=60,
        on_evict=lambda model: evicted.append(model.name),
    )
    holding, done = threading.Event(), threading.Event()

    def serve_a() -> None:
        with repository.lease("a"):
            holding.set()
            done.wait()

    threads, outcomes = in_threads(1, serve_a)
    holding.wait()
    try:
        with repository.lease("b"):  # over the budget, but a serves a request and b was just loaded
            pass
        assert evicted == [] and entries(repository)["a/1"].state == entries(repository)["b/1"].state == "READY"
    finally:
        done.set()
    threads[0].join()
    assert outcomes == [None]
    assert evicted == ["b"]  # a's request has ended: the least recently used idle model goes


def test_pinned_models_load_at_start_and_are_never_evicted(tmp_path: Path) -> None:
    evicted: list[str] = []
    loader = Loader(mb=40)
    root = tree(tmp_path, {"a": ["1"], "b": ["1"], "p": ["1", "2"]})
    repository = ModelRepository(root, loader, 60, ["p"], lambda model: evicted.append(model.name))
    repository.load_pinned()
    assert [call[:2] for call in loader.calls] == [("p", "2")]
    for name in ("a", "b"):
        with repository.lease(name):
            pass
    assert evicted == ["a"] and entries(repository)["p/2"].state == "READY" and entries(repository)["p/2"].pinned
    with pytest.raises(ModelLoadError, match="Pinned model.*q"):
        ModelRepository(root, loader, pinned=["q"])


def test_a_model_over_the_budget_alone_is_served_with_one_warning(tmp_path: Path) -> None:
    class Records(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    records: list[logging.LogRecord] = []
    handler = Records()
    logging.getLogger("azmlinfsrv").addHandler(handler)
    try:
        repository = ModelRepository(tree(tmp_path, {"a": ["1"], "b": ["1"]}), Loader(mb=40), budget_mb=10)
        for name in ("a", "a", "b"):
            with repository.lease(name) as model:
                assert model.name == name
    finally:
        logging.getLogger("azmlinfsrv").removeHandler(handler)
    warnings = [record.getMessage() for record in records if record.levelno == logging.WARNING]
    assert [message.split(" alone")[0] for message in warnings] == ["Model a version 1", "Model b version 1"]
    assert entries(repository)["a/1"].state == "UNAVAILABLE" and entries(repository)["b/1"].state == "READY"


def test_unload_sticks_until_load_and_waits_for_the_requests_in_flight(tmp_path: Path) -> None:
    evicted: list[str] = []
    loader = Loader()
    repository = ModelRepository(
        tree(tmp_path, {"a": ["1", "2"], "b": ["1"]}), loader, on_evict=lambda model: evicted.append(model.name)
    )
    holding, done = threading.Event(), threading.Event()

    def serve_a() -> None:
        with repository.lease("a", "2"):
            holding.set()
            done.wait()

    threads, _ = in_threads(1, serve_a)
    holding.wait()
    try:
        repository.unload("a")  # every version
        assert entries(repository)["a/2"].state == "UNLOADING" and evicted == []
        for version in ("1", "2"):
            with pytest.raises(ModelUnavailable, match="unloaded") as raised, repository.lease("a", version):
                pass
            assert raised.value.status_code == 503
    finally:
        done.set()
    threads[0].join()
    assert evicted == ["a"] and entries(repository)["a/2"].reason == UNLOADED
    with pytest.raises(ModelUnavailable, match="unloaded"), repository.lease("a"):
        pass
    repository.load("a")
    assert [call[:2] for call in loader.calls] == [("a", "2"), ("a", "2")]
    with repository.lease("a", "1") as model:
        assert model.version == "1"
    assert repository.stats.unloads == 2


def test_a_model_unloaded_while_it_loads_is_dropped(tmp_path: Path) -> None:
    evicted: list[str] = []
    gate = threading.Event()
    loader = Loader(gate=gate)
    repository = ModelRepository(
        tree(tmp_path, {"a": ["1"]}), loader, on_evict=lambda model: evicted.append(model.name)
    )

    def use() -> str:
        with repository.lease("a") as model:
            return model.name

    threads, outcomes = in_threads(1, use)
    loader.started.wait()
    repository.unload("a")
    gate.set()
    threads[0].join()
    assert isinstance(outcomes[0], ModelUnavailable) and "unloaded while it loaded" in outcomes[0].message
    assert evicted == ["a"] and entries(repository)["a/1"].state == "UNAVAILABLE"


def test_memory_is_given_back_to_the_system_after_eviction(tmp_path: Path) -> None:
    class Big:
        """60 MB of arrays in 1 MB pieces and 1M floats, in a reference cycle: freed only by the collector, and
        from the C heap, which the server's heap policy below keeps unless trimmed."""

        def __init__(self) -> None:
            self.arrays = [np.ones(MB // 8) for _ in range(60)]
            self.floats = [float(number) for number in range(1_000_000)]
            self.me = self

    libc = ctypes.CDLL(None)
    if not keep_freed_memory(512):
        pytest.skip("not glibc")
    try:
        repository = ModelRepository(tree(tmp_path, {"big": ["1"]}), lambda *_: Big(), budget_mb=1000)
        before = memory.resident_bytes()
        repository.load("big")
        loaded = memory.resident_bytes()
        repository.unload("big")
        after = memory.resident_bytes()
    finally:  # glibc's defaults back (128 KiB each), for the tests that run after this one
        libc.mallopt(-1, 128 * 1024)
        libc.mallopt(-3, 128 * 1024)
    assert before is not None and loaded is not None and after is not None
    taken, returned = loaded - before, loaded - after
    numbers = f"the load took {taken / MB:.1f} MB, and {returned / MB:.1f} MB came back"
    assert taken >= 80 * MB, numbers
    assert abs(entries(repository)["big/1"].bytes - taken) <= 10 * MB  # what the repository measured
    assert returned >= 0.7 * taken, numbers


def test_rescan_finds_new_versions_and_forgets_removed_ones(tmp_path: Path) -> None:
    root = tree(tmp_path, {"a": ["1"]})
    repository = ModelRepository(root, Loader())
    (root / "a" / "2").mkdir()
    (root / "a" / "1").rmdir()
    repository.rescan()
    assert [entry.version for entry in repository.index()] == ["2"]


@pytest.fixture
def configured(tmp_path: Path) -> Iterator[tuple[ModelRepository[Any], Loader]]:
    loader = Loader()
    repository = ModelRepository(tree(tmp_path, {"a": ["1"], "b": ["3"]}), loader)
    script_models.configure(repository)
    yield repository, loader
    script_models.configure(None)


def test_scripts_get_models_from_the_configured_repository(configured: tuple[ModelRepository[Any], Loader]) -> None:
    repository, loader = configured
    assert script_models.load_model("a").name == "a"
    folders: list[Path] = []

    def custom_loader(folder: Path) -> str:
        folders.append(folder)
        return "custom"

    custom = script_models.load_model("b", loader=custom_loader)
    assert custom == "custom" and folders == [repository.root / "b" / "3"]
    assert script_models.load_model("b", "3", loader=lambda folder: "again") == "custom"  # loaded once
    with script_models.leased_model("a") as model:
        assert model.name == "a" and entries(repository)["a/1"].leases == 1
    assert entries(repository)["a/1"].leases == 0 and len(loader.calls) == 1


def test_scripts_without_a_repository_are_told_why() -> None:
    script_models.configure(None)
    with pytest.raises(ModelNotFoundError, match="no multi-model repository"):
        script_models.load_model("a")
    with pytest.raises(ModelNotFoundError, match="get_model_path"):
        script_models.leased_model("a")
