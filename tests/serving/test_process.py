"""Process tuning (process.py): freed heap memory kept while serving, given back once idle; the GC freeze."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from typing import Any

import pytest
import uvicorn

from scoring_runtime import create_app, glibc
from scoring_runtime.serving import process as heap, server
from scoring_runtime.serving.process import IdleTrim, keep_freed_memory
from tests.conftest import ServerFactory
from tests.helpers import SCRIPTS, free_port

# Waves of 1 MB blocks freed and allocated again, as 64 connections' bodies come and go; prints page faults per wave.
_WAVES = textwrap.dedent(
    """
    import random, resource, sys
    from scoring_runtime.serving.process import keep_freed_memory
    if sys.argv[1] != "0":
        assert keep_freed_memory(int(sys.argv[1]))
    rng = random.Random(3)
    live = [b"x" * (1 << 20) for _ in range(64)]
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(100):
        for j in rng.sample(range(64), rng.randint(1, 64)):
            live[j] = None
        live = [block if block is not None else b"x" * (1 << 20) for block in live]
    print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 100)
    """
)


def _faults_per_wave(keep_mb: int) -> float:
    done = subprocess.run([sys.executable, "-c", _WAVES, str(keep_mb)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return float(done.stdout)


@pytest.mark.slow
@pytest.mark.skipif(glibc.LIBC is None, reason="the policy is glibc's")
def test_freed_memory_is_kept_for_reuse_instead_of_faulted_in_again() -> None:
    default, kept = _faults_per_wave(0), _faults_per_wave(256)
    assert default > 50  # glibc's own policy gives memory back and faults it in again...
    assert kept < default / 20  # ...which the kept memory avoids


def test_zero_leaves_the_c_library_policy() -> None:
    assert keep_freed_memory(0) is False


class _Recorder:
    def __init__(self) -> None:
        self.trims = 0

    def __call__(self) -> None:
        self.trims += 1


def test_memory_is_given_back_once_per_quiet_spell(monkeypatch: pytest.MonkeyPatch) -> None:
    recorder = _Recorder()
    monkeypatch.setattr(heap, "give_back_freed_memory", recorder)
    idle = IdleTrim(idle_s=10)
    assert not idle.tick(0, 100.0)  # start-up
    assert not idle.tick(0, 109.0)
    assert idle.tick(0, 110.0)  # what init() freed goes back too
    assert not idle.tick(0, 130.0)  # once per spell
    assert not idle.tick(5, 131.0)  # requests: a new spell begins
    assert not idle.tick(9, 140.0)
    assert not idle.tick(9, 149.5)
    assert idle.tick(9, 150.0)
    assert recorder.trims == 2


@pytest.mark.slow
def test_the_server_sets_the_policy_after_init_and_ticks_the_idle_trim(monkeypatch: pytest.MonkeyPatch) -> None:
    kept: list[int] = []
    trims = _Recorder()

    def keep(keep_mb: int) -> bool:
        kept.append(keep_mb)
        return True

    monkeypatch.setattr(server, "keep_freed_memory", keep)
    monkeypatch.setattr(heap, "give_back_freed_memory", trims)
    monkeypatch.setattr(server, "IdleTrim", lambda: IdleTrim(idle_s=0.5))
    app = create_app(entry_script=SCRIPTS / "init_pid.py", heap_keep_mb=64)
    config = uvicorn.Config(app, host="127.0.0.1", port=free_port(), lifespan="on", log_config=None)
    draining = server.DrainingServer(config, app, app.settings.heap_keep_mb)

    async def main() -> Any:
        serving = asyncio.ensure_future(draining.serve())
        while not draining.started:
            await asyncio.sleep(0.05)
        seen = list(kept)
        await asyncio.sleep(2.5)  # ticks every second: a baseline, then a spell of at least 0.5 s
        draining.should_exit = True
        await serving
        return seen

    assert asyncio.run(main()) == [64]
    assert trims.trims == 1


@pytest.mark.slow
@pytest.mark.parametrize("preload", ["false", "true"])
def test_servers_freeze_what_init_left(serve: ServerFactory, workers: int, preload: str) -> None:
    # Full collections then skip the model and the modules: they were the slowest 1% of requests under load.
    server = serve("gc_state.py", workers=workers, env={"WORKER_PRELOAD": preload})
    state = server.post("/score", content="x").json()
    assert state["frozen"] > 10_000 and state["threshold"] == [10_000, 10, 10]
