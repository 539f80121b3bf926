"""The load, the sampler, the command line and the report's pieces, in process: against a small aiohttp server of
the test's own, and on this process's own tree."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import psutil
import pytest
from aiohttp import web

from scoring_runtime.profiling import command, launch, main, sampler, session
from scoring_runtime.profiling.errors import ProfileError
from scoring_runtime.profiling.load import Level, Load
from scoring_runtime.profiling.session import Plan
from scoring_runtime.profiling.table import summary
from tests.helpers import free_port

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@asynccontextmanager
async def serving(handler: Handler, metrics: str = "") -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_post("/score", handler)

    async def page(request: web.Request) -> web.Response:
        return web.Response(text=metrics) if metrics else web.Response(status=404)

    app.router.add_get("/metrics", page)
    runner = web.AppRunner(app)
    await runner.setup()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    site = web.SockSite(runner, sock)
    await site.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        await runner.cleanup()


def sleeping(seconds: float, status: int = 200) -> Handler:
    async def handle(request: web.Request) -> web.Response:
        await request.read()
        await asyncio.sleep(seconds)
        return web.Response(status=status, text="ok" if status == 200 else "boom\n  twice")

    return handle


def plan(url: str, **changes: Any) -> Plan:
    values: dict[str, Any] = dict(
        url=url + "/score", bodies=[b"1", b"2"], headers={"Content-Type": "application/json"},
        levels=[Level("concurrency", 2)], interval_s=0.2, max_trials=4, tolerance=0.5, percentile=50.0, warmup=2,
        max_in_flight=8, poisson=False, seed=0, timeout_s=5.0,
    )  # fmt: skip
    return Plan(**(values | changes))


def test_the_open_loop_counts_the_wait_for_a_slot() -> None:
    async def scenario() -> Load:
        async with serving(sleeping(0.05)) as url:
            load = Load(url + "/score", [b"x"], {}, Level("rate", 50), max_in_flight=1, poisson=True, seed=3)
            load.start()
            await asyncio.sleep(0.4)
            await load.stop()
            return load

    load = asyncio.run(scenario())
    samples = load.take()
    assert load.waited > 0 and load.first_error is None
    assert all(sample.ok and sample.scheduled <= sample.sent < sample.done for sample in samples)
    # One slot for 50 a second of 50 ms each: later requests waited for the earlier ones, and that is their latency.
    assert max(sample.latency for sample in samples) > 2 * min(sample.latency for sample in samples)


def test_failures_keep_their_first_answer() -> None:
    async def scenario() -> tuple[Load, Load]:
        async with serving(sleeping(0.0, status=500)) as url:
            failing = Load(url + "/score", [b"x"], {}, Level("concurrency", 1), max_in_flight=1)
            failing.start()
            await asyncio.sleep(0.05)
            await failing.stop()
        refused = Load(f"http://127.0.0.1:{free_port()}/score", [b"x"], {}, Level("rate", 100), max_in_flight=4)
        refused.start()
        await asyncio.sleep(0.05)
        await refused.stop()
        return failing, refused

    failing, refused = asyncio.run(scenario())
    assert failing.first_error == "500 boom twice"
    assert not any(sample.ok for sample in failing.take())
    assert refused.first_error is not None and refused.first_error.startswith("ClientConnectorError")


def test_a_level_is_measured_until_stable() -> None:
    lines: list[str] = []

    async def scenario() -> session.LevelResult:
        async with serving(sleeping(0.005)) as url:
            await session.warm_up(plan(url))
            return await session.measure(plan(url, tolerance=10.0), Level("concurrency", 2), lines.append)

    result = asyncio.run(scenario())
    assert result.stable and len(result.windows) >= 3 and result.measured.success > 0
    assert result.client_cpu >= 0 and lines[-1].endswith("stable")
    assert "c=2 window 1/4" in lines[0] and "req/s, p50 " in lines[0]


def test_an_unstable_level_says_so_at_its_last_try() -> None:
    lines: list[str] = []

    async def scenario() -> session.LevelResult:
        async with serving(sleeping(0.0, status=503)) as url:
            return await session.measure(plan(url, max_trials=3), Level("concurrency", 1), lines.append)

    result = asyncio.run(scenario())
    assert not result.stable and result.measured.success == 0
    assert "failed" in lines[-1] and lines[-1].endswith("not stable, last try") and ", p50 -," in lines[-1]


def test_a_warm_up_that_only_fails() -> None:
    async def scenario() -> None:
        async with serving(sleeping(0.0, status=500)) as url:
            await session.warm_up(plan(url, warmup=0))
            await session.warm_up(plan(url))

    with pytest.raises(ProfileError, match=r"every request failed \(2 warm-up requests\); the first answer: 500 boom"):
        asyncio.run(scenario())


def test_init_time_from_the_metrics_page() -> None:
    page = (
        '# HELP scoring_init_duration_seconds x\nscoring_init_duration_seconds{pid="1"} 0.25\n'
        'scoring_init_duration_seconds{pid="2"} 0.5\nscoring_init_duration_seconds_other 9\n'
        "scoring_init_duration_seconds nan-ish\n"
    )
    assert session.init_seconds_of(page) == 0.5
    assert session.init_seconds_of("") is None

    async def scenario() -> tuple[float | None, float | None]:
        async with serving(sleeping(0), metrics=page) as url:
            with_page = await asyncio.to_thread(session.init_seconds, url)
        async with serving(sleeping(0)) as url:
            return with_page, await asyncio.to_thread(session.init_seconds, url)

    assert asyncio.run(scenario()) == (0.5, None)
    assert session.init_seconds(f"http://127.0.0.1:{free_port()}") is None


def test_the_tree_of_this_process() -> None:
    reading = sampler.read_tree(psutil.Process())
    assert reading is not None and reading.rss > 0 and reading.pss is not None
    busy = sampler.Reading(reading.at + 2.0, {key: value + 1.0 for key, value in reading.cpu_seconds.items()}, 0, 0)
    newborn = sampler.Reading(reading.at + 1.0, {**reading.cpu_seconds, (1, 0.0): 0.5}, 0, None)
    assert sampler.cores(reading, busy) == pytest.approx(0.5 * len(reading.cpu_seconds))
    assert sampler.cores(reading, newborn) == pytest.approx(0.5)  # born in between: all its time counts
    assert sampler.cores(reading, reading) == 0.0
    usage = sampler.Usage(1.0, 0.5, 100, None, 1)
    assert (
        usage.memory == 100 and sampler.between([usage], 0.0, 1.0) == [usage] and sampler.between([usage], 2, 3) == []
    )
    tree = sampler.TreeSampler(os.getpid(), 0.02).start()
    try:
        assert (tree.memory_now() or 0) > 0
        while len(tree.usages()) < 2:
            psutil.Process().cpu_percent()
    finally:
        tree.stop()
    assert all(item.processes >= 1 and item.memory > 0 for item in tree.usages())


def test_a_tree_whose_root_is_gone() -> None:
    class Gone(psutil.Process):
        def children(self, recursive: bool = False) -> list[psutil.Process]:
            raise psutil.NoSuchProcess(self.pid)

    gone = Gone()
    assert sampler.read_tree(gone) is None and sampler.tree(gone) is None
    tree = sampler.TreeSampler(os.getpid(), 0.01)
    tree.root = gone
    assert tree.memory_now() is None
    tree.start()
    tree._thread.join(5)
    assert not tree._thread.is_alive() and tree.usages() == []
    tree.stop()


def test_memory_without_pss() -> None:
    class Denied(psutil.Process):
        def memory_full_info(self) -> Any:
            raise psutil.AccessDenied(self.pid)

    rss, pss = sampler._memory(Denied())
    assert rss > 0 and pss is None


def test_the_server_s_last_words() -> None:
    log = "banner\n2026-01-01 00:00:00,1 E [5] x - User's init function failed\nTraceback:\n  File x\nOSError: gone\n"
    assert launch.last_error_line(log) == "OSError: gone"
    assert launch.last_error_line(log.replace("OSError: gone", "  tail")) == (
        "2026-01-01 00:00:00,1 E [5] x - User's init function failed"
    )
    assert launch.last_error_line("just this\n\n") == "just this"
    assert launch.last_error_line("") == "(it wrote nothing)"
    assert launch._read(None) == "" and launch._read(Path("/nonexistent/log")) == ""
    assert launch.ready_status(f"http://127.0.0.1:{free_port()}") is None


def refused(capsys: pytest.CaptureFixture[str], argv: list[str], status: int, words: str) -> None:
    assert main(argv) == status
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("scoring-runtime profile: ") and words in err, err


@pytest.mark.parametrize(
    ("argv", "status", "words"),
    [
        (["--url", "http://x:1", "--entry_script", "s.py"], 2, "--entry_script: server flags apply to a server"),
        (["--url", "http://x:1", "--worker_timeout", "5"], 2, "--worker_timeout, 5: server flags apply"),
        (["--pid", "1"], 2, "--pid goes with --url"),
        (["--distribution", "poisson"], 2, "--distribution goes with --rate"),
        (["--path", "score"], 2, "--path score: give a path such as /score"),
        (["--rate", "1,x"], 2, "--rate 1,x: give positive numbers"),
        (["--concurrency", "1,-2"], 2, "--concurrency 1,-2: give positive numbers"),
        (["--percentile", "100"], 2, "'100' is not between 0 and 100"),
        (["--max-trials", "2"], 2, "3 or more"),
        (["--workers", "zero"], 2, "'zero' is not a positive whole number"),
        (["--header", "novalue"], 2, "write it NAME:VALUE"),
        (["--url", "ftp://x"], 3, "--url ftp://x: give the server's base URL"),
        (["--url", "http://127.0.0.1:1", "--pid", "999999999"], 3, "--pid 999999999: no such process"),
    ],
)
def test_a_command_line_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: list[str], status: int, words: str
) -> None:
    (tmp_path / "d.txt").write_text("1\n")
    refused(capsys, [*argv, "--input-dataset", str(tmp_path / "d.txt"), "--output", str(tmp_path / "o")], status, words)


def test_missing_extras_are_named(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    found = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == "psutil" else found(name))
    argv = ["--input-dataset", str(tmp_path / "d.txt"), "--output", str(tmp_path)]
    refused(capsys, argv, 3, "the profile needs psutil: pip install 'scoring-runtime[profile]'")


def test_an_output_that_cannot_be_made(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "d.txt").write_text("1\n")
    (tmp_path / "file").write_text("")
    argv = ["--input-dataset", str(tmp_path / "d.txt"), "--output", str(tmp_path / "file" / "out")]
    refused(capsys, argv, 3, "cannot create --output")


def test_levels_and_server_flags() -> None:
    parser = command.build_parser()
    args, extra = parser.parse_known_args(
        ["--input-dataset", "d", "--output", "o", "--entry_script", "s.py", "--model-dir", "m", "--workers", "2",
         "--max_queue", "5", "--rate", "2.5,5"]
    )  # fmt: skip
    assert command.check(args, extra) == ["--max_queue", "5", "--entry_script", "s.py", "--model_dir", "m",
                                          "--worker_count", "2"]  # fmt: skip
    assert [level.label for level in command.levels_of(args)] == ["2.5/s", "5/s"]
    args, _ = parser.parse_known_args(["--input-dataset", "d", "--output", "o"])
    assert [level.label for level in command.levels_of(args)] == ["c=1", "c=2", "c=4", "c=8"]


def test_the_table_shows_what_was_not_measured() -> None:
    level = {
        "level": "c=1", "stable": False, "measuredQueriesPerSecond": 1.0, "averageLatencyInMs": None,
        "latencyPercentile50InMs": None, "latencyPercentile90InMs": None, "latencyPercentile95InMs": None,
        "latencyPercentile99InMs": None, "latencyPercentile999InMs": None, "successRate": 0.0,
        "cpuPercentile90": None, "maxUtilizedMemoryInGB": None, "clientCpu": 0.01,
    }  # fmt: skip
    text = summary(
        {"levels": [level], "initTimeInMs": 12.0, "initTimeSource": "time-to-ready", "memoryAfterInitInGB": None,
         "maxUtilizedCpu": None, "recommendationLevel": "c=1", "recommendationPercentile": 90.0,
         "recommendationLatencyInMs": 5.0, "measuredQueriesPerSecond": 1.0, "recommendedCpu": None, "notes": ["n"],
         "kubernetesResources": None}
    )  # fmt: skip
    assert "c=1    NO" in text and "init(): 12.0 ms (time to /ready)" in text
    assert "CPU and memory not measured" in text and "note: n" in text and "Kubernetes" not in text


def test_what_the_report_says_of_the_server(monkeypatch: pytest.MonkeyPatch) -> None:
    from scoring_runtime.profiling import run

    args = command.build_parser().parse_args(["--input-dataset", "d", "--output", "o"])
    assert run._workers(args, ["--worker-count=3"]) == 3
    assert run._workers(args, ["--worker_count", "2"]) == 2 and run._workers(args, ["--worker_count"]) == 1
    monkeypatch.setenv("WORKER_COUNT", "4")
    assert run._workers(args, []) == 4
    monkeypatch.setenv("WORKER_COUNT", "many")
    assert run._workers(args, []) == 1
    masked = run._masked(["--auth-keys=a,b", "--jwt_secret", "s", "--port", "1", "--appinsights_instrumentation_key"])
    assert masked == ["--auth-keys=(secret)", "--jwt_secret", "(secret)", "--port", "1",
                      "--appinsights_instrumentation_key"]  # fmt: skip
    assert run._sampler(None, 0.1) is None
    assert run._sampler(2**22 + 12345, 0.1) is None  # no such process: wait_ready says why it is gone

    def denied(pid: int, interval: float) -> None:
        raise psutil.AccessDenied(pid)

    monkeypatch.setattr(run, "TreeSampler", denied)
    with pytest.raises(ProfileError, match="--pid 1: not allowed to read that process"):
        run._sampler(1, 0.1)
