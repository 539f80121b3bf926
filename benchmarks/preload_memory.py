"""Memory of a 2-worker server holding a 200 MB model, with and without WORKER_PRELOAD.

Usage: python benchmarks/preload_memory.py [--model-mb 200] [--workers 2]

Starts scoring_runtime on a free loopback port for each setting, scores a few requests so that every worker has
touched the model, then sums PSS (proportional set size: shared pages split between the processes sharing them)
and RSS over the master and its workers, from /proc/<pid>/smaps_rollup. Prints one JSON line per setting.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

SCRIPT = """
import os
import numpy as np

def init():
    global model
    model = np.load(os.path.join(os.environ["AZUREML_MODEL_DIR"], "weights.npy"))

def run(data):
    return {"pid": os.getpid(), "checksum": float(model[::4096].sum())}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def process_tree(pid: int) -> list[int]:
    pids = [pid]
    for task in Path(f"/proc/{pid}/task").iterdir():
        children = (task / "children").read_text().split()
        for child in children:
            pids.extend(process_tree(int(child)))
    return pids


def memory_kib(pid: int) -> dict[str, int]:
    values = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("Pss", "Rss"):
            values[key.lower()] = int(rest.split()[0])
    return values


def measure(workdir: Path, workers: int, preload: bool) -> dict[str, object]:
    port = free_port()
    env = dict(os.environ, AZUREML_MODEL_DIR=str(workdir), WORKER_PRELOAD=str(preload).lower())
    command = [sys.executable, "-m", "scoring_runtime", "--entry_script", str(workdir / "score.py")]
    command += ["--host", "127.0.0.1", "--port", str(port), "--worker_count", str(workers)]
    log = (workdir / f"server-{preload}.log").open("wb")
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1) as response:
                    if response.status == 200:
                        break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError(f"server did not start; see {log.name}") from None
                time.sleep(0.2)

        def score(_: int) -> int:
            request = urllib.request.Request(f"http://127.0.0.1:{port}/score", data=b"{}", method="POST")
            with urllib.request.urlopen(request, timeout=30) as response:
                return int(json.loads(response.read())["pid"])

        with ThreadPoolExecutor(8) as pool:
            pids_seen = set(pool.map(score, range(64)))
        time.sleep(1.0)
        tree = process_tree(server.pid)
        per_process = {pid: memory_kib(pid) for pid in tree}
        return {
            "workers": workers,
            "preload": preload,
            "processes": len(tree),
            "workers_that_scored": len(pids_seen),
            "pss_mib": round(sum(m["pss"] for m in per_process.values()) / 1024, 1),
            "rss_mib": round(sum(m["rss"] for m in per_process.values()) / 1024, 1),
        }
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(30)
        log.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-mb", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    import numpy as np

    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        (workdir / "score.py").write_text(SCRIPT)
        weights = np.random.default_rng(0).standard_normal(args.model_mb * 1024 * 1024 // 8)
        np.save(workdir / "weights.npy", weights)
        del weights
        results = [measure(workdir, args.workers, preload) for preload in (False, True)]
    for result in results:
        print(json.dumps(result))
    without, with_preload = results
    saved = float(str(without["pss_mib"])) - float(str(with_preload["pss_mib"]))
    before, after = without["pss_mib"], with_preload["pss_mib"]
    print(f"PSS without preload {before} MiB, with preload {after} MiB: {saved:.1f} MiB less")


if __name__ == "__main__":
    main()
