"""Latency of the liveness probe `GET /` while every worker is inside a run() that sleeps for 10 s.

Usage: python benchmarks/probe_latency.py [--workers 1] [--probes 50]

Starts scoring_runtime on a free loopback port with tests/scripts/sleepy.py, sends one sleeping /score request per
worker, then times `--probes` probes over one keep-alive connection. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--probes", type=int, default=50)
    args = parser.parse_args()
    port = free_port()
    command = [sys.executable, "-m", "scoring_runtime", "--entry_script", str(ROOT / "tests/scripts/sleepy.py")]
    command += ["--host", "127.0.0.1", "--port", str(port), "--worker_count", str(args.workers)]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        for _ in range(600):
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                connection.request("GET", "/")
                if connection.getresponse().read() == b"Healthy":
                    break
            except OSError:
                time.sleep(0.1)

        def sleep_in_run() -> None:
            busy = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            busy.request("POST", "/score", body=b"10")
            try:
                busy.getresponse().read()
            except OSError:
                pass  # the server is killed before the 10 s are up

        for _ in range(args.workers):
            threading.Thread(target=sleep_in_run, daemon=True).start()
        time.sleep(1.0)
        latencies = []
        for _ in range(args.probes):
            start = time.perf_counter()
            connection.request("GET", "/")
            assert connection.getresponse().read() == b"Healthy"
            latencies.append((time.perf_counter() - start) * 1000)
        print(
            json.dumps(
                {
                    "workers": args.workers,
                    "probes": args.probes,
                    "median_ms": round(statistics.median(latencies), 2),
                    "max_ms": round(max(latencies), 2),
                }
            )
        )
    finally:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()


if __name__ == "__main__":
    main()
