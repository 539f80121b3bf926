"""How long a 2-worker server takes to replace a worker that run() killed (os._exit, or a segfault via ctypes).

Usage: python benchmarks/crash_recovery.py

For each way of dying: start the server on a free loopback port with tests/scripts/crash.py, note both worker pids,
send the killing request, then send requests back to back until one is answered by a new pid. Prints the time from
the crash to that answer, and how many requests in between succeeded or failed.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the test helpers start and stop servers the way the test suite does

import httpx2 as httpx  # noqa: E402

from tests.helpers import SCRIPTS, Server, clean_env  # noqa: E402


def measure(how: str, log_dir: Path) -> str:
    server = Server(
        "--entry_script", str(SCRIPTS / "crash.py"), "--worker_count", "2", env=clean_env(), log_dir=log_dir
    )
    try:
        server.wait_ready()
        before = {server.post("/score", content="ok").json()["pid"] for _ in range(20)}
        crashed_at = time.monotonic()
        try:
            server.post("/score", content=how)
        except httpx.TransportError:
            pass
        succeeded = failed = 0
        while time.monotonic() - crashed_at < 15:
            try:
                pid = server.post("/score", content="ok").json()["pid"]
                succeeded += 1
                if pid not in before:
                    gap = time.monotonic() - crashed_at
                    return (
                        f"{how}: workers seen before {len(before)}; a new worker answered {gap:.2f}s after the crash; "
                        f"in between {succeeded} requests succeeded, {failed} failed"
                    )
            except httpx.TransportError:
                failed += 1
            time.sleep(0.01)
        return f"{how}: no new worker answered within 15 s"
    finally:
        server.stop()


def main() -> None:
    log_dir = Path("/tmp/scoring_runtime_bench")
    log_dir.mkdir(exist_ok=True)
    for how in ("exit", "segv"):
        print(measure(how, log_dir))


if __name__ == "__main__":
    main()
