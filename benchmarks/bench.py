"""Side-by-side throughput, latency, CPU and memory of scoring_runtime, the reference azmlinfsrv and a bare floor.

Usage: python benchmarks/bench.py [--duration 3] [--rounds 3] [--warmup 1] [--quick] [--scenarios a,b]
       [--servers wire,floor,scoring_runtime:1,reference,mlserver,mlserver-batching] [--concurrency 1,8,64]
       [--out results/<time>.jsonl]

For every scenario (bench_scenarios.py) and server (wire_app.py's bare sockets, floor_app.py's floor, scoring_runtime
and the reference with 1 and 2 workers; the no-code scenarios of bench_nocode.py name their own, one worker each,
MLServer among them, and on v2_sklearn MLServer with its adaptive batching on too, mlserver-batching), every server
pinned to core 1 and wrk to core 0:
1. alone, one server at a time: spawn, time the first 200 on `GET /` (cold start) and on the scenario's POST, check
   that answer against the floor's, read the idle PSS, load it at the highest concurrency, read the PSS again;
2. all servers up at once: for each concurrency, a warm-up of each, then `--rounds` timed wrk runs of each in
   turn, so that the machine's noise falls on every server alike. The round with the highest req/s is reported.
Writes one JSON line per (scenario, server, concurrency); `python benchmarks/report.py <jsonl>` makes RESULTS.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import resource
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from bench_nocode import MLSERVERS, mlserver_versions
from bench_scenarios import HERE, SCENARIOS, Scenario
from bench_servers import (
    ALL_SERVERS,
    SERVER_CORE,
    RunningServer,
    ServerKind,
    core_busy_seconds,
    ensure_mlserver_venv,
    ensure_reference_venv,
    http,
    versions,
)
from bench_wrk import WRK_CORE, check_tools, foreign_wrk, run_wrk
from floor_app import make_work


class Context:
    def __init__(self, args: argparse.Namespace, ref_python: Path | None, log_dir: Path) -> None:
        self.args, self.ref_python, self.log_dir = args, ref_python, log_dir
        self.started = time.monotonic()
        self.done = 0
        self.total = sum(len(kinds(s, args.servers)) for s in args.scenarios) * len(args.concurrency) * args.rounds

    def progress(self, text: str) -> None:
        print(f"[{self.done}/{self.total} {(time.monotonic() - self.started) / 60:4.1f} min] {text}", flush=True)


def kinds(scenario: Scenario, servers: list[ServerKind]) -> list[ServerKind]:
    """The chosen servers that take part in the scenario."""
    return [kind for kind in servers if scenario.takes(kind.name, kind.workers)]


def same_answer(scenario: Scenario, answer: bytes, expected: bytes) -> bool:
    if scenario.same is not None:
        return scenario.same(answer, expected)
    if scenario.content_type != "application/json":
        return answer == expected
    try:
        return bool(json.loads(answer) == json.loads(expected))
    except ValueError:
        return False


def start(kind: ServerKind, scenario: Scenario, ctx: Context, phase: str) -> RunningServer:
    return RunningServer(
        kind, scenario, ctx.log_dir / f"{scenario.name}-{kind.name}-w{kind.workers}-{phase}.log", ctx.ref_python
    )


def alone(kind: ServerKind, scenario: Scenario, body: Path, expected: bytes, ctx: Context) -> dict[str, Any]:
    """Cold start, a checked answer and memory, with no other benchmarked server running (PSS splits shared pages)."""
    server = start(kind, scenario, ctx, "alone")
    try:
        cold_start = server.wait_ready()
        status, answer = http("POST", server.url + scenario.path, body.read_bytes(), scenario.content_type)
        first_score = time.monotonic() - server.spawned
        if status != 200:
            raise RuntimeError(f"{kind.label} answered {status} to {scenario.name}: {answer[:300]!r}")
        matches = same_answer(scenario, answer, expected)
        if not matches:
            print(f"  WARNING: {kind.label}'s answer differs from the expected: {answer[:120]!r}", flush=True)
        time.sleep(0.5)
        idle = server.pss_mib()
        loaded = run_wrk(
            server.url + scenario.path, body, scenario.content_type, max(ctx.args.concurrency), ctx.args.duration
        )
        server.wait_idle()
        return {
            "errors_alone_load": loaded["errors_total"],
            "cold_start_s": round(cold_start, 3),
            "first_score_s": round(first_score, 3),
            "idle_pss_mib": round(idle, 1),
            "after_load_pss_mib": round(server.pss_mib(), 1),
            "processes": len(server.pids()),
            "response_bytes": len(answer),
            "answer_matches_floor": matches,
        }
    finally:
        server.stop()


def children_cpu_seconds() -> float:
    """CPU time of this process's finished children: the wrk runs (the servers are reaped only when stopped)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(server: RunningServer, scenario: Scenario, body: Path, connections: int, seconds: float) -> dict[str, Any]:
    drained = server.wait_idle()
    cpu_before, log_before, core_before = server.cpu_seconds(), server.log_bytes(), core_busy_seconds(SERVER_CORE)
    wrk_core_before, wrk_before = core_busy_seconds(WRK_CORE), children_cpu_seconds()
    loadavg, foreign = os.getloadavg()[0], foreign_wrk()
    result = run_wrk(server.url + scenario.path, body, scenario.content_type, connections, seconds)
    core = core_busy_seconds(SERVER_CORE) - core_before
    cpu = server.cpu_seconds() - cpu_before
    wrk_cpu = children_cpu_seconds() - wrk_before
    wrk_other = core_busy_seconds(WRK_CORE) - wrk_core_before - wrk_cpu
    time.sleep(0.2)  # access lines are written just after each response
    done = max(result["requests"], 1)
    # How much of the server's core went to other processes (other people's work on this shared machine): noise.
    result["core_other_busy"] = max(0.0, core - cpu) / result["seconds"] if result["seconds"] else 0.0
    result["wrk_core_other_busy"] = max(0.0, wrk_other) / result["seconds"] if result["seconds"] else 0.0
    # Near 1, wrk had no time to spare: the client, not the server, set the pace and much of the latency.
    result["wrk_busy"] = wrk_cpu / result["seconds"] if result["seconds"] else 0.0
    result["cpu_us_per_request"] = cpu / done * 1e6
    result["cpu_busy"] = cpu / result["seconds"] if result["seconds"] else 0.0
    result["log_bytes_per_request"] = (server.log_bytes() - log_before) / done
    result["loadavg_1m"] = loadavg
    result["idle_wait_s"] = round(drained, 2)
    result["foreign_wrk"] = foreign
    return result


def load(scenario: Scenario, body: Path, ctx: Context) -> dict[tuple[ServerKind, int], list[dict[str, Any]]]:
    """Every run of every server at every concurrency, the servers taking turns: the warm-up first, then the timed."""
    rounds: dict[tuple[ServerKind, int], list[dict[str, Any]]] = {}
    with ExitStack() as stack:
        servers = []
        for kind in kinds(scenario, ctx.args.servers):
            server = start(kind, scenario, ctx, "load")
            stack.callback(server.stop)
            server.wait_ready()
            servers.append(server)
        for connections in ctx.args.concurrency:
            for server in servers:
                server.wait_idle()
                warmup = run_wrk(server.url + scenario.path, body, scenario.content_type, connections, ctx.args.warmup)
                rounds[(server.kind, connections)] = [warmup]
            for _ in range(ctx.args.rounds):
                for server in servers:
                    result = timed(server, scenario, body, connections, ctx.args.duration)
                    rounds.setdefault((server.kind, connections), []).append(result)
                    ctx.done += 1
                    ctx.progress(
                        f"{scenario.name:13} {server.kind.label:20} c={connections:<3} {result['rps']:8,.0f} req/s  "
                        f"p99 {result['p99_ms']:8.2f} ms  cpu {result['cpu_us_per_request']:7.0f} us/req  "
                        f"errors {result['errors_total']}"
                    )
    return rounds


def measure(scenario: Scenario, work: Path, ctx: Context, common: dict[str, Any]) -> list[dict[str, Any]]:
    body = work / f"{scenario.name}.body"
    body.write_bytes(scenario.body())
    if scenario.expected is not None:
        expected = scenario.expected(body.read_bytes())
    else:
        floor_work, _ = make_work(scenario.name, scenario.model_dir)
        expected = floor_work(body.read_bytes())
    ctx.progress(f"{scenario.name}: cold start and memory, one server at a time")
    memory = {kind: alone(kind, scenario, body, expected, ctx) for kind in kinds(scenario, ctx.args.servers)}
    rows = []
    for (kind, connections), (warmup, *results) in load(scenario, body, ctx).items():
        best = max(results, key=lambda result: result["rps"])
        rows.append(
            {
                **common,
                "scenario": scenario.name,
                "server": kind.name,
                "workers": kind.workers,
                "concurrency": connections,
                **best,
                "rounds_rps": [round(r["rps"], 1) for r in results],
                "rounds_p99_ms": [r["p99_ms"] for r in results],
                "errors_all_rounds": sum(r["errors_total"] for r in results),
                "errors_warmup": warmup["errors_total"],
                "body_bytes": body.stat().st_size,
                **memory[kind],
                "measured_at": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
        )
    return rows


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=3.0, help="seconds of each timed wrk run (default 3)")
    parser.add_argument("--rounds", type=int, default=3, help="timed runs of each server, in turn (default 3)")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds of warm-up at each concurrency (1)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 round of 1 s, the quick scenarios")
    parser.add_argument("--scenarios", help="comma-separated scenario names (default: all)")
    parser.add_argument("--servers", help="comma-separated, such as floor,scoring_runtime:1,reference (default: all)")
    parser.add_argument("--concurrency", default="1,8,64", help="comma-separated wrk connection counts")
    parser.add_argument("--out", type=Path, help="JSON lines file (default benchmarks/results/<UTC time>.jsonl)")
    args = parser.parse_args(argv)
    if args.quick:
        args.duration, args.rounds, args.warmup = 1.0, 1, 1.0
    names = args.scenarios.split(",") if args.scenarios else None
    args.scenarios = [s for s in SCENARIOS if (s.name in names if names else not args.quick or s.quick)]
    if names and len(args.scenarios) != len(names):
        raise SystemExit(f"unknown scenario in {names}; known: {[s.name for s in SCENARIOS]}")
    wanted = args.servers.split(",") if args.servers else None
    args.servers = [k for k in ALL_SERVERS if not wanted or k.name in wanted or f"{k.name}:{k.workers}" in wanted]
    args.concurrency = [int(value) for value in args.concurrency.split(",")]
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    wrk_version = check_tools()
    if len(os.sched_getaffinity(0)) < 2:
        raise SystemExit("the benchmark pins wrk to core 0 and the servers to core 1: it needs 2 cores")
    if foreign_wrk():
        print("WARNING: another wrk is running on this machine: its load will disturb these figures", flush=True)
    chosen = [kind for scenario in args.scenarios for kind in kinds(scenario, args.servers)]
    ref_python = ensure_reference_venv() if any(k.name == "reference" for k in chosen) else None
    mlserver = any(k.name in MLSERVERS for k in chosen)
    if mlserver:
        ensure_mlserver_venv()
    # The run's name: the output file's, so that its server logs sit beside it under the same name.
    run = args.out.stem if args.out else datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    out = args.out or HERE / "results" / f"{run}.jsonl"
    log_dir = out.parent / f"{run}-logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    ctx = Context(args, ref_python, log_dir)
    settings = {"duration_s": args.duration, "rounds": args.rounds, "warmup_s": args.warmup}
    found = {**versions(wrk_version, ref_python), **(mlserver_versions() if mlserver else {})}
    common = {"run": run, "settings": settings, "versions": found}
    runs = ctx.total * args.duration + len(chosen) * len(args.concurrency) * args.warmup
    print(f"{ctx.total} timed runs of {args.duration:g} s; at least {runs / 60:.0f} min of load", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-") as work, out.open("w") as sink:
        for scenario in args.scenarios:
            for row in measure(scenario, Path(work), ctx, common):
                sink.write(json.dumps(row) + "\n")
            sink.flush()
    print(f"wrote {out} in {(time.monotonic() - ctx.started) / 60:.1f} min; server logs in {log_dir}", flush=True)


if __name__ == "__main__":
    main()
