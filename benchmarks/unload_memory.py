"""Memory given back to the OS when a model is unloaded through the V2 repository API: ours against MLServer.

Usage: cd benchmarks && ../.venv/bin/python unload_memory.py [--models 3] [--cycles 2] [--trees 30] [--out PATH]

Builds a multi-model folder of scikit-learn random forests (`<root>/<name>/1/model.joblib`, about 145 MB resident each
once loaded). Then, one server at a time (ours with one worker; ours keeping no freed heap, SCORING_HEAP_KEEP_MB=0;
MLServer in process with `load_models_at_startup: false`, so models load only through the repository API): loads and
unloads a one-tree warm-up model, records the RSS and PSS of the server's process tree (idle), then, for every cycle
and model, loads it (`POST /v2/repository/models/{m}/load`), scores one row (`/v2/models/{m}/infer`), records,
unloads it (`.../unload`), and records again, each sample after --settle seconds. Prints a markdown table with the
share of each load's growth that its unload gave back, and writes every sample as a JSON line to --out."""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench_nocode import MLSERVER_VENV, mlserver_model_settings, mlserver_settings, mlserver_versions, v2_body
from bench_servers import clean_env, ensure_mlserver_venv, free_port, http, process_tree
from preload_memory import memory_kib

from scoring_runtime._version import __version__

HERE = Path(__file__).resolve().parent
# Loaded and unloaded before the idle sample: ours imports scikit-learn (about 120 MB) on its first load, MLServer
# at start-up; without it ours's first load would count the import as the model's and never give it back.
WARMUP = "warmup"
KEEP0 = "scoring_runtime keep0"
LIVE = "/v2/health/live"  # both answer it; MLServer's readiness would wait for models it is told not to load
SERVER_BUDGET_S = 240  # `timeout` ends a server still running after this, should this script die without stopping it
Record = dict[str, Any]


@dataclass(frozen=True)
class Target:
    server: str
    command: list[str]
    port: int
    env: tuple[tuple[str, str], ...] = ()


def model_names(count: int) -> list[str]:
    return [f"forest_{chr(ord('a') + i)}" for i in range(count)]


def build_models(root: Path, names: list[str], trees: int, features: int) -> None:
    """One random forest per name at `<root>/<name>/1/model.joblib`, and a one-tree WARMUP: fully grown trees on
    random labels have about a node per sample, which makes them big (10 classes: 144 bytes a node) and quick to fit."""
    import joblib  # type: ignore[import-untyped]  # the main venv has them; only the build needs them
    import numpy as np
    from sklearn.ensemble import RandomForestClassifier  # type: ignore[import-untyped]

    for seed, name in enumerate([WARMUP, *names]):
        rng = np.random.default_rng(seed)
        samples = 200 if name == WARMUP else 20_000
        x, y = rng.standard_normal((samples, features)), rng.integers(0, 10, samples)
        forest = RandomForestClassifier(1 if name == WARMUP else trees, n_jobs=2, random_state=seed).fit(x, y)
        forest.n_jobs = None  # predict on one thread in the servers
        folder = root / name / "1"
        folder.mkdir(parents=True)
        joblib.dump(forest, folder / "model.joblib")


def mlserver_repository(root: Path, names: list[str], ports: tuple[int, int, int], scratch: Path) -> list[str]:
    """MLServer's settings (those of bench_nocode, plus no loading at start-up) and one model-settings.json per model,
    in a folder named after it, in `scratch`; the command that serves them."""
    settings = {**mlserver_settings(*ports, scratch), "load_models_at_startup": False}
    (scratch / "settings.json").write_text(json.dumps(settings))
    for name in [WARMUP, *names]:
        (scratch / name).mkdir()
        model = {**mlserver_model_settings(root / name / "1" / "model.joblib"), "name": name}
        (scratch / name / "model-settings.json").write_text(json.dumps(model))
    return [str(MLSERVER_VENV / "bin" / "mlserver"), "start", str(scratch)]


def our_command(root: Path, port: int) -> list[str]:
    command = [sys.executable, "-m", "scoring_runtime", "--model_dir", str(root), "--worker_count", "1"]
    return [*command, "--host", "127.0.0.1", "--port", str(port)]


def free_ports() -> tuple[int, int]:
    """MLServer's gRPC and metrics ports, which cannot be switched off."""
    return free_port(), free_port()


def memory_mib(pid: int) -> tuple[float, float]:
    """RSS and PSS of the tree under the `timeout` wrapper `pid`, in MiB; the wrapper itself is left out."""
    totals = [memory_kib(child) for child in process_tree(pid)[1:]]
    return round(sum(t["rss"] for t in totals) / 1024, 1), round(sum(t["pss"] for t in totals) / 1024, 1)


@contextmanager
def running(target: Target, log_path: Path) -> Iterator[tuple[int, str]]:
    """The server started in a session of its own under `timeout`; its wrapper's pid and URL. Ends its group."""
    command = ["timeout", "--kill-after=10", str(SERVER_BUDGET_S), *target.command]
    with log_path.open("wb") as log:
        env = clean_env(**dict(target.env))
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=HERE, start_new_session=True
        )
        try:
            url = f"http://127.0.0.1:{target.port}"
            deadline = time.monotonic() + 90
            while not _answers(url + LIVE):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{target.server} did not start: see {log_path}")
                time.sleep(0.2)
            yield process.pid, url
        finally:
            stop(process)


def _answers(url: str) -> bool:
    try:
        return http("GET", url)[0] == 200
    except OSError:
        return False


def stop(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(20)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


def call(url: str, body: bytes = b"{}") -> bytes:
    status, answer = http("POST", url, body, "application/json")
    if status != 200:
        raise RuntimeError(f"POST {url} answered {status}: {answer[:300]!r}")
    return answer


def model_state(url: str, name: str) -> str:
    """The model's state in the repository index, as the server words it."""
    entries = json.loads(call(url + "/v2/repository/index"))
    return ",".join(str(e.get("state")) for e in entries if e.get("name") == name) or "absent"


def measure(target: Target, names: list[str], args: argparse.Namespace, log_dir: Path) -> list[Record]:
    records: list[Record] = []
    body = v2_body([[0.25] * args.features], "FP64", "predict")
    with running(target, log_dir / f"{target.server.replace(' ', '_')}.log") as (pid, url):

        def sample(step: str, cycle: int = 0, model: str = "", state: str = "") -> None:
            time.sleep(args.settle)
            rss, pss = memory_mib(pid)
            record = {"server": target.server, "step": step, "cycle": cycle, "model": model, "state": state}
            records.append({**record, "rss_mib": rss, "pss_mib": pss})
            print(f"  {target.server:21} {step:9} {model:9} cycle {cycle}: RSS {rss:7.1f} PSS {pss:7.1f}", flush=True)

        sample("started")
        for action in ("load", "infer", "unload"):
            _act(url, WARMUP, action, body)
        sample("idle")
        for cycle in range(1, args.cycles + 1):
            for name in names:
                _act(url, name, "load", body)
                _act(url, name, "infer", body)  # it really serves
                sample("loaded", cycle, name, model_state(url, name))
                _act(url, name, "unload", body)
                sample("unloaded", cycle, name, model_state(url, name))
        time.sleep(args.final_wait)
        sample("final")
    return records


def _act(url: str, name: str, action: str, body: bytes) -> None:
    if action == "infer":
        call(f"{url}/v2/models/{name}/infer", body)
    else:
        call(f"{url}/v2/repository/models/{name}/{action}")


def given_back(before: float, loaded: float, unloaded: float) -> float | None:
    """The share of a load's growth that its unload returned; None when the load grew nothing to return."""
    grown = loaded - before
    return None if grown <= 0 else round((loaded - unloaded) / grown, 3)


def pairs(records: list[Record]) -> list[Record]:
    """One row per load/unload: memory before it (the previous sample), loaded, unloaded, and the share given back."""
    rows = []
    for previous, loaded, unloaded in zip(records, records[1:], records[2:], strict=False):
        if loaded["step"] != "loaded" or unloaded["step"] != "unloaded" or previous["server"] != loaded["server"]:
            continue
        row = {key: loaded[key] for key in ("server", "cycle", "model")}
        for kind in ("rss", "pss"):
            before, held, after = previous[f"{kind}_mib"], loaded[f"{kind}_mib"], unloaded[f"{kind}_mib"]
            row |= {f"{kind}_before": before, f"{kind}_loaded": held, f"{kind}_unloaded": after}
            row[f"{kind}_given_back"] = given_back(before, held, after)
        rows.append(row)
    return rows


def ratchet(records: list[Record]) -> dict[str, float]:
    """Per server: how much more RSS its final sample holds than its idle one, in MiB."""
    idle = {r["server"]: r["rss_mib"] for r in records if r["step"] == "idle"}
    return {r["server"]: round(r["rss_mib"] - idle[r["server"]], 1) for r in records if r["step"] == "final"}


def _share(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"


def markdown(rows: list[Record], records: list[Record]) -> str:
    lines = [
        "| server | cycle | model | RSS before | RSS loaded | RSS unloaded | RSS given back | PSS given back |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        cells = [r["server"], r["cycle"], r["model"], r["rss_before"], r["rss_loaded"], r["rss_unloaded"]]
        cells += [_share(r["rss_given_back"]), _share(r["pss_given_back"])]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    lines.append("")
    idle = {r["server"]: r["rss_mib"] for r in records if r["step"] == "idle"}
    for server, grown in ratchet(records).items():
        lines.append(f"- {server}: idle RSS {idle[server]} MiB, {grown:+} MiB after all unloads and the final wait")
    return "\n".join(lines)


def versions() -> Record:
    return {"scoring-runtime": __version__, "python": platform.python_version(), **mlserver_versions()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=3, help="how many models (2-26)")
    parser.add_argument("--cycles", type=int, default=2, help="load/unload rounds over every model")
    parser.add_argument("--trees", type=int, default=30, help="trees per forest (30: about 145 MB resident each)")
    parser.add_argument("--features", type=int, default=8)
    parser.add_argument("--settle", type=float, default=2.0, help="seconds to wait before each sample")
    # Past ours's idle trim (serving/process.py's IDLE_S, 30 s): the final sample shows what a quiet server holds.
    parser.add_argument("--final-wait", type=float, default=32.0, help="extra seconds before the last sample")
    parser.add_argument("--servers", default=f"scoring_runtime,{KEEP0},mlserver")
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    parser.add_argument("--out", type=Path, default=HERE / "results" / f"unload-memory-{stamp}.jsonl")
    args = parser.parse_args()
    servers = args.servers.split(",")
    if "mlserver" in servers:
        ensure_mlserver_venv()
    names = model_names(args.models)
    records: list[Record] = []
    logs = args.out.with_name(args.out.stem + "-logs")  # kept: the temporary folder goes with the models
    logs.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="unload-memory-") as tmp:
        root, scratch = Path(tmp) / "models", Path(tmp) / "mlserver"
        scratch.mkdir()
        started = time.monotonic()
        build_models(root, names, args.trees, args.features)
        print(f"built {len(names)} forests in {time.monotonic() - started:.1f} s", flush=True)
        ours, ours_keep0, theirs = free_port(), free_port(), free_port()
        targets = {
            "scoring_runtime": Target("scoring_runtime", our_command(root, ours), ours),
            # Ours keeping no freed C heap while serving (serving/process.py keeps 64 MiB by default).
            KEEP0: Target(KEEP0, our_command(root, ours_keep0), ours_keep0, (("SCORING_HEAP_KEEP_MB", "0"),)),
            "mlserver": Target("mlserver", mlserver_repository(root, names, (theirs, *free_ports()), scratch), theirs),
        }
        for server in servers:
            records += measure(targets[server], names, args, logs)
    rows = pairs(records)
    print("\n" + markdown(rows, records))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w") as out:
        out.write(json.dumps({"kind": "versions", **versions()}) + "\n")
        for kind, items in (("step", records), ("pair", rows)):
            out.writelines(json.dumps({"kind": kind, **item}) + "\n" for item in items)
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
