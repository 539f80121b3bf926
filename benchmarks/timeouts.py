"""How soon clients hear of a timeout: SCORING_TIMEOUT_MS for sync and async run(), WORKER_TIMEOUT under gunicorn.

Usage: python benchmarks/timeouts.py

Scoring timeout: one server per kind of run() (tests/scripts/sleepy.py, async_run.py) with SCORING_TIMEOUT_MS=300,
one warm keep-alive connection, 20 requests whose run() would take 5 s; prints how far past 300 ms the 500 came.
Worker timeout: 2 workers with WORKER_TIMEOUT=2 and a run() of 60 s; prints when its client got the 500 and when the
replacement worker was ready. Each server is started on a free loopback port and stopped by its process group.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the test helpers start and stop servers the way the test suite does

import httpx2 as httpx  # noqa: E402

from tests.helpers import SCRIPTS, Server, clean_env  # noqa: E402

TIMEOUT_MS = 300
REQUESTS = 20


def scoring_timeout(script: str, log_dir: Path) -> str:
    server = Server(
        "--entry_script", str(SCRIPTS / script), env=clean_env(SCORING_TIMEOUT_MS=str(TIMEOUT_MS)), log_dir=log_dir
    )
    try:
        server.wait_ready()
        overshoots = []
        with httpx.Client(base_url=server.url, timeout=30.0) as client:
            client.post("/score", content="0")
            for _ in range(REQUESTS):
                start = time.perf_counter()
                response = client.post("/score", content="5")
                overshoots.append((time.perf_counter() - start) * 1000.0 - TIMEOUT_MS)
                assert response.status_code == 500, response.text
        return (
            f"{script}: {REQUESTS} timeouts of {TIMEOUT_MS} ms answered past the deadline by "
            f"median {statistics.median(overshoots):.1f} ms, max {max(overshoots):.1f} ms"
        )
    finally:
        server.stop()


def worker_timeout(log_dir: Path) -> str:
    env = clean_env(WORKER_TIMEOUT="2")
    server = Server("--entry_script", str(SCRIPTS / "sleepy.py"), "--worker_count", "2", env=env, log_dir=log_dir)
    try:
        server.wait_ready()
        start = time.monotonic()
        response = server.post("/score", content="60")
        answered = time.monotonic() - start
        while server.log().count("ready for serving traffic") < 3 and time.monotonic() - start < 30:
            time.sleep(0.02)
        replaced = time.monotonic() - start
        return (
            f"WORKER_TIMEOUT=2 s: the stuck run()'s client got {response.status_code} after {answered:.2f} s; "
            f"a replacement worker was ready after {replaced:.2f} s"
        )
    finally:
        server.stop()


def main() -> None:
    log_dir = Path("/tmp/scoring_runtime_bench")
    log_dir.mkdir(exist_ok=True)
    for script in ("sleepy.py", "async_run.py"):
        print(scoring_timeout(script, log_dir))
    print(worker_timeout(log_dir))


if __name__ == "__main__":
    main()
