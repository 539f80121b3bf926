"""What sizing the numerical libraries' thread pools to the worker's share of the CPUs (SCORING_MODEL_THREADS=auto,
the default) gains over the libraries' own sizing (SCORING_MODEL_THREADS=0: a thread per core, in every worker).

Usage: python benchmarks/thread_pools.py [--rounds 3] [--duration 5] [--size 384]

The script scores with numpy's BLAS (a dense layer: a request's 64 rows times a size x size matrix, twice), the work
whose pool the setting sizes. Two deployments, each with both settings, taking turns over the rounds:
- `2 workers`: WORKER_COUNT=2 on the machine's CPUs (every worker's pool sized for all of them, by default);
- `1 CPU quota`: one worker in a cgroup v1 CPU folder allowed one CPU of time per period (a Kubernetes CPU limit of
  1), where the machine's cores are all visible. Skipped where no cgroup v1 CPU controller is writable (run as root).
wrk sends from core 0 with 8 connections. Prints the median req/s and p99 per deployment and setting, and the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench_servers import clean_env, free_port, http
from bench_wrk import check_tools, run_wrk

SCRIPT = """
import json

import numpy as np

def init():
    global weights
    weights = np.random.default_rng(0).standard_normal(({size}, {size}))

def run(data):
    rows = np.asarray(json.loads(data)["rows"], dtype=np.float64)  # a plain run() gets the body as text
    hidden = np.tanh(rows @ weights)
    return float((hidden @ weights).sum())
"""
CGROUP_MOUNT = Path("/sys/fs/cgroup/cpu")
SETTINGS = {"library defaults": "0", "auto": "auto"}


def cpu_quota_folder() -> Path | None:
    """A fresh cgroup v1 CPU folder allowed one CPU of time per period, or None where that cannot be made."""
    folder = CGROUP_MOUNT / f"scoring-runtime-bench-{uuid.uuid4().hex[:8]}"
    try:
        folder.mkdir()
        (folder / "cpu.cfs_period_us").write_text("100000")
        (folder / "cpu.cfs_quota_us").write_text("100000")
    except OSError:
        return None
    return folder


def serve(work: Path, workers: int, threads: str, cgroup: Path | None) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    command = [sys.executable, "-m", "scoring_runtime", "--entry_script", str(work / "score.py")]
    command += ["--host", "127.0.0.1", "--port", str(port), "--worker_count", str(workers)]
    env = clean_env(SCORING_MODEL_THREADS=threads)
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env.pop(name, None)
    procs = str(cgroup / "cgroup.procs") if cgroup else None

    def join_cgroup() -> None:  # in the child, before exec: the server and its workers run under the quota
        os.setsid()
        if procs is not None:
            Path(procs).write_text(str(os.getpid()))

    log = open(work / f"server-{port}.log", "wb")
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, preexec_fn=join_cgroup)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if http("GET", url + "/")[0] == 200:
                return process, url
        except OSError:
            pass
        time.sleep(0.2)
    stop(process)
    raise RuntimeError(f"the server did not start: see {log.name}")


def stop(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(30)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def measure(work: Path, workers: int, threads: str, cgroup: Path | None, duration: float) -> dict[str, Any]:
    process, url = serve(work, workers, threads, cgroup)
    try:
        run_wrk(url + "/score", work / "body.json", "application/json", 8, 1.0)  # warm-up
        result = run_wrk(url + "/score", work / "body.json", "application/json", 8, duration)
        log = (work / f"server-{url.rsplit(':', 1)[1]}.log").read_text()
        chosen = next((line.split("azmlinfsrv - ")[-1] for line in log.splitlines() if "Threads " in line), "?")
    finally:
        stop(process)
    if result["errors_total"]:
        raise RuntimeError(f"{result['errors_total']} errors from wrk: the server's log is in {work}")
    return {"rps": result["rps"], "p99_ms": result["p99_ms"], "errors": result["errors_total"], "log": chosen}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--size", type=int, default=384)
    args = parser.parse_args()
    check_tools()
    cgroup = cpu_quota_folder()
    deployments: dict[str, tuple[int, Path | None]] = {"2 workers": (2, None)}
    if cgroup is not None:
        deployments["1 CPU quota"] = (1, cgroup)
    else:
        print(f"no writable cgroup v1 CPU controller at {CGROUP_MOUNT}: the quota case is skipped")
    results: dict[tuple[str, str], list[dict[str, Any]]] = {}
    try:
        with tempfile.TemporaryDirectory() as scratch:
            work = Path(scratch)
            (work / "score.py").write_text(SCRIPT.format(size=args.size))
            rows = [[(i * 7 + j) % 13 / 13 for j in range(args.size)] for i in range(64)]
            (work / "body.json").write_text(json.dumps({"rows": rows}))
            for round_ in range(args.rounds):
                for deployment, (workers, folder) in deployments.items():
                    for name, value in SETTINGS.items():
                        row = measure(work, workers, value, folder, args.duration)
                        results.setdefault((deployment, name), []).append(row)
                        print(
                            f"round {round_ + 1} {deployment:12} {name:16} {row['rps']:8.1f} req/s "
                            f"p99 {row['p99_ms']:7.1f} ms errors {row['errors']}  [{row['log']}]",
                            flush=True,
                        )
    finally:
        if cgroup is not None:
            cgroup.rmdir()
    print("\nmedians:")
    for deployment in deployments:
        rps = {name: statistics.median(r["rps"] for r in results[(deployment, name)]) for name in SETTINGS}
        p99 = {name: statistics.median(r["p99_ms"] for r in results[(deployment, name)]) for name in SETTINGS}
        print(
            f"{deployment:12} library defaults {rps['library defaults']:8.1f} req/s p99 {p99['library defaults']:7.1f}"
            f" ms | auto {rps['auto']:8.1f} req/s p99 {p99['auto']:7.1f} ms | auto/defaults: "
            f"{rps['auto'] / rps['library defaults']:.2f}x req/s, {p99['auto'] / p99['library defaults']:.2f}x p99"
        )


if __name__ == "__main__":
    main()
