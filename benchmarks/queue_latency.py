"""Latency under overload, with the wait queue bounded (SCORING_MAX_QUEUE=8) and, in effect, unbounded.

Usage: python benchmarks/queue_latency.py [--requests 128] [--run-ms 50] [--clients 1,2,4,8,16,32,64,128]

Starts scoring_runtime (one worker, one run slot) on a free loopback port with tests/scripts/sleepy.py, whose run()
sleeps for the time in the body. For each number of clients, that many concurrent keep-alive clients send
`--requests` requests between them (at least 4 each), each client one request after another; a client that gets a
503 sends its next request at once. Prints one table row per queue setting and number of clients: how many 200s
and their p50/p99 latency, how many 503s and their p50/p99 latency (which include each client's first connection).
The server is started afresh for each queue setting and killed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx2 as httpx

ROOT = Path(__file__).resolve().parent.parent
UNBOUNDED = 1_000_000


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(port: int, max_queue: int) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "scoring_runtime", "--entry_script", str(ROOT / "tests/scripts/sleepy.py")]
    command += ["--host", "127.0.0.1", "--port", str(port), "--max_queue", str(max_queue), "--max_concurrency", "1"]
    env = {**os.environ, "AZUREML_LOG_LEVEL": "WARNING"}
    server = subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/", timeout=1.0).status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.1)
    os.killpg(server.pid, signal.SIGKILL)
    raise SystemExit("the server did not start within 60 s")


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def drive(url: str, clients: int, total: int, body: bytes) -> tuple[list[float], list[float], float]:
    """Latencies in ms of the 200s and of the 503s, and the wall time, for `total` requests from `clients`."""
    ok: list[float] = []
    refused: list[float] = []
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=120.0) as client:

        async def one_client(count: int) -> None:
            for _ in range(count):
                start = time.perf_counter()
                response = await client.post("/score", content=body)
                elapsed = (time.perf_counter() - start) * 1000
                if response.status_code == 200:
                    ok.append(elapsed)
                elif response.status_code == 503:
                    refused.append(elapsed)
                else:
                    raise SystemExit(f"unexpected {response.status_code}: {response.text}")

        shares = [total // clients + (1 if index < total % clients else 0) for index in range(clients)]
        start = time.perf_counter()
        await asyncio.gather(*(one_client(share) for share in shares))
        return ok, refused, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=128, help="requests per number of clients")
    parser.add_argument("--run-ms", type=int, default=50, help="how long each run() takes")
    parser.add_argument("--clients", default="1,2,4,8,16,32,64,128")
    parser.add_argument("--bound", type=int, default=8, help="SCORING_MAX_QUEUE of the bounded run")
    args = parser.parse_args()
    levels = [int(level) for level in args.clients.split(",")]
    body = f"{args.run_ms / 1000:.3f}".encode()
    print(f"run() takes {args.run_ms} ms, 1 run slot")
    header = f"{'SCORING_MAX_QUEUE':>19} {'clients':>7} {'requests':>8} {'200s':>5} {'p50 200 ms':>10}"
    header += f" {'p99 200 ms':>10} {'503s':>5} {'p50 503 ms':>10} {'p99 503 ms':>10} {'wall s':>6}"
    print(header, flush=True)
    for max_queue in (args.bound, UNBOUNDED):
        port = free_port()
        server = start_server(port, max_queue)
        try:
            for clients in levels:
                total = max(args.requests, 4 * clients)
                ok, refused, wall = asyncio.run(drive(f"http://127.0.0.1:{port}", clients, total, body))
                label = str(max_queue) if max_queue != UNBOUNDED else f"{UNBOUNDED} (unbounded)"
                print(
                    f"{label:>19} {clients:>7} {total:>8} {len(ok):>5} {percentile(ok, 0.5):>10.1f}"
                    f" {percentile(ok, 0.99):>10.1f} {len(refused):>5} {percentile(refused, 0.5):>10.1f}"
                    f" {percentile(refused, 0.99):>10.1f} {wall:>6.1f}",
                    flush=True,
                )
        finally:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


if __name__ == "__main__":
    main()
