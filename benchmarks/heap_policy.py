"""What the heap policy (SCORING_HEAP_KEEP_MB) costs in memory and saves in CPU, for choosing its default.

Usage: python benchmarks/heap_policy.py [--keep 0,32,64,128,256] [--concurrency 64] [--workers 1] [--rounds 3]
       [--duration 5] [--idle 35]

For each setting, in turn and over several rounds: a server on the 1 MB @rawhttp echo (the workload the policy was
made for), pinned to core 1, is loaded by wrk from core 0 for --duration seconds after a warm-up; then its resident
memory (the whole process tree) is read right after the burst, and again after --idle seconds without a request
(the policy gives memory back after 30 s of quiet). Prints the median of each figure per setting.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_scenarios import BY_NAME
from bench_servers import RunningServer, ServerKind
from bench_wrk import check_tools, run_wrk


def rss_mib(server: RunningServer) -> float:
    """Resident memory of the server's process tree (VmRSS of each process; shared pages count in each)."""
    total_kib = 0
    for pid in server.pids():
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kib += int(line.split()[1])
        except FileNotFoundError:
            continue
    return total_kib / 1024


def measure(keep: int, args: argparse.Namespace, work: Path, index: int) -> dict[str, Any]:
    scenario = BY_NAME["raw_1mb"]
    body = work / "body"
    env = {"SCORING_HEAP_KEEP_MB": str(keep)}
    kind = ServerKind("scoring_runtime", args.workers)
    server = RunningServer(kind, scenario, work / f"keep{keep}-{index}.log", None, extra_env=env)
    try:
        server.wait_ready()
        idle_start = rss_mib(server)
        run_wrk(server.url + "/score", body, scenario.content_type, args.concurrency, 1.0)  # warm-up
        server.wait_idle()
        before = server.cpu_seconds()
        result = run_wrk(server.url + "/score", body, scenario.content_type, args.concurrency, args.duration)
        cpu = server.cpu_seconds() - before
        server.wait_idle()
        after_burst = rss_mib(server)
        time.sleep(args.idle)
        after_idle = rss_mib(server)
    finally:
        server.stop()
    return {
        "keep_mb": keep,
        "rps": result["rps"],
        "p99_ms": result["p99_ms"],
        "cpu_us_per_request": cpu / max(result["requests"], 1) * 1e6,
        "errors": result["errors_total"],
        "rss_start_mib": idle_start,
        "rss_after_burst_mib": after_burst,
        "rss_after_idle_mib": after_idle,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", default="0,32,64,128,256", help="SCORING_HEAP_KEEP_MB values, comma-separated")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--idle", type=float, default=35.0, help="seconds of quiet before the second reading")
    parser.add_argument("--out", type=Path, help="JSON lines of every measurement")
    args = parser.parse_args(argv)
    check_tools()
    keeps = [int(value) for value in args.keep.split(",")]
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="heap-") as work:
        (Path(work) / "body").write_bytes(BY_NAME["raw_1mb"].body())
        for index in range(args.rounds):
            order = keeps if index % 2 == 0 else keeps[::-1]
            for keep in order:
                row = measure(keep, args, Path(work), index)
                rows.append(row)
                print(
                    f"round {index + 1} keep {keep:4} MiB: {row['rps']:6,.0f} req/s  p99 {row['p99_ms']:6.1f} ms  "
                    f"cpu {row['cpu_us_per_request']:6.0f} us/req  RSS start {row['rss_start_mib']:5.0f}  "
                    f"after burst {row['rss_after_burst_mib']:5.0f}  after {args.idle:g} s idle "
                    f"{row['rss_after_idle_mib']:5.0f} MiB",
                    flush=True,
                )
    if args.out:
        args.out.write_text("".join(json.dumps(row) + "\n" for row in rows))
    print(f"\n1 MB @rawhttp echo, c={args.concurrency}, {args.workers} worker(s), medians of {args.rounds} rounds")
    print("| SCORING_HEAP_KEEP_MB | CPU per request | req/s | p99 | RSS after the burst | RSS after idle |")
    print("|---|---|---|---|---|---|")
    for keep in keeps:
        mine = [row for row in rows if row["keep_mb"] == keep]

        def median(field: str, rows_of_keep: list[dict[str, Any]] = mine) -> float:
            return float(statistics.median(row[field] for row in rows_of_keep))

        print(
            f"| {keep} | {median('cpu_us_per_request'):.0f} us | {median('rps'):,.0f} | {median('p99_ms'):.1f} ms | "
            f"{median('rss_after_burst_mib'):.0f} MiB | {median('rss_after_idle_mib'):.0f} MiB |"
        )


if __name__ == "__main__":
    main()
