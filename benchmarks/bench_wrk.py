"""Running wrk pinned to core 0 with post.lua, and reading its summary."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from bench_scenarios import HERE

LUA = HERE / "post.lua"
WRK_CORE = 0  # the servers run on core 1
MARKER = "WRK_JSON "
INSTALL_HINT = "wrk is not installed: `apt-get install wrk` (Debian/Ubuntu), or `make bench` as root installs it"


def check_tools() -> str:
    """wrk's version line; exits with how to install what is missing."""
    for tool in ("wrk", "taskset"):
        if shutil.which(tool) is None:
            raise SystemExit(INSTALL_HINT if tool == "wrk" else "taskset is missing: `apt-get install util-linux`")
    # `wrk -v` prints its version and usage, and exits 1.
    output = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout
    return output.splitlines()[0].strip() if output else "wrk (unknown version)"


def foreign_wrk() -> int:
    """How many wrk processes are running now, before ours starts: another benchmark on this machine (noise)."""
    count = 0
    for entry in Path("/proc").iterdir():
        try:
            count += entry.name.isdigit() and (entry / "comm").read_text().strip() == "wrk"
        except OSError:
            continue  # gone meanwhile
    return count


def wrk_command(url: str, body: Path, content_type: str, connections: int, seconds: float) -> list[str]:
    # wrk takes whole seconds; its default 2 s timeout would drop the slow answers of the slowest servers.
    duration = f"{max(1, round(seconds))}s"
    pinned = ["taskset", "-c", str(WRK_CORE), "wrk", "-t1", f"-c{connections}", f"-d{duration}"]
    return [*pinned, "--timeout", "10s", "--latency", "-s", str(LUA), url, "--", str(body), content_type]


def parse_wrk(output: str) -> dict[str, Any]:
    """The figures of wrk's output: the summary line post.lua prints, turned into the units the report uses."""
    lines = [line for line in output.splitlines() if line.startswith(MARKER)]
    if not lines:
        raise ValueError(f"no {MARKER.strip()} line in wrk's output:\n{output}")
    raw = json.loads(lines[-1][len(MARKER) :])
    seconds = raw["duration_us"] / 1e6
    errors = {name: raw[name] for name in ("connect", "read", "write", "timeout", "status")}
    return {
        "requests": raw["requests"],
        "seconds": round(seconds, 3),
        "rps": raw["requests"] / seconds if seconds else 0.0,
        "p50_ms": raw["p50_us"] / 1000,
        "p90_ms": raw["p90_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "mean_ms": raw["mean_us"] / 1000,
        "max_ms": raw["max_us"] / 1000,
        "bytes_read": raw["bytes"],
        "errors": errors,
        "errors_total": sum(errors.values()),
    }


def run_wrk(url: str, body: Path, content_type: str, connections: int, seconds: float) -> dict[str, Any]:
    command = wrk_command(url, body, content_type, connections, seconds)
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
    return parse_wrk(done.stdout)
