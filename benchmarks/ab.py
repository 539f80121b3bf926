"""Paired A/B of two revisions of scoring_runtime on one scenario: server CPU per request, req/s and p99.

Usage: python benchmarks/ab.py BASE HEAD [--scenario raw_1mb] [--concurrency 8] [--workers 1] [--rounds 8]
       [--duration 3] [--out ab.jsonl]

BASE and HEAD are git revisions (`WORKTREE` is the working tree as it is), each optionally followed by `+PATCH`: a
patch applied to that revision's package, such as the variants in benchmarks/variants/ that take out one mechanism
(`a81fb07+benchmarks/variants/no-hot-routes.patch`). Each one's `scoring_runtime/` is exported to a folder of its own
and served from it (PYTHONPATH), by the same interpreter and installed dependencies; both
servers run at once, pinned to core 1, and wrk loads one at a time from core 0, in the order ABBA BAAB ..., so that
the machine's drift falls on both alike. Each round gives HEAD/BASE ratios; the median ratio is the result.

`--base-env` / `--head-env KEY=VALUE` (repeatable) set a variable for one side only: the same revision with a feature
off and on. `{sink}` in a value is the URL of a receiver this script runs on 127.0.0.1 that accepts every POST (an
Application Insights ingestion endpoint or an OTLP collector), e.g. telemetry off against on:
`ab.py WORKTREE WORKTREE --scenario echo --head-env AML_APP_INSIGHTS_ENABLED=true
--head-env 'APPLICATIONINSIGHTS_CONNECTION_STRING=InstrumentationKey=0-0;IngestionEndpoint={sink}'`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench_scenarios import BY_NAME, ROOT, Scenario
from bench_servers import RunningServer, ServerKind
from bench_wrk import check_tools, run_wrk
from telemetry_sink import TelemetrySink

WORKTREE = "WORKTREE"


def export(spec: str, into: Path) -> str:
    """The package of `spec` (a revision, and maybe `+PATCH`) under `into`; its description for the report."""
    revision, _, patch = spec.partition("+")
    described = _export(revision, into)
    if patch:
        applied = subprocess.run(["git", "apply", str((ROOT / patch).resolve())], cwd=into, capture_output=True)
        if applied.returncode != 0:
            raise SystemExit(f"{patch} does not apply to {revision}: {applied.stderr.decode().strip()}")
        described += f", with {patch}"
    return described


def _export(revision: str, into: Path) -> str:
    if revision == WORKTREE:
        subprocess.run(["cp", "-r", str(ROOT / "scoring_runtime"), str(into)], check=True)
        return "the working tree"
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", revision, "scoring_runtime"], capture_output=True)
    if archive.returncode != 0:
        raise SystemExit(f"git archive {revision}: {archive.stderr.decode().strip()}")
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    described = subprocess.run(
        ["git", "-C", str(ROOT), "log", "-1", "--format=%h %s", revision], capture_output=True, text=True, check=True
    )
    return described.stdout.strip()[:100]


def served_from(folder: Path) -> str:
    """Where `import scoring_runtime` resolves with PYTHONPATH=folder: it must be the exported copy."""
    probe = "import os, scoring_runtime; print(os.path.dirname(scoring_runtime.__file__))"
    found = subprocess.run(
        [sys.executable, "-c", probe],
        env={"PYTHONPATH": str(folder), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        cwd=folder,  # `-c` puts the working directory first on sys.path: never the repository's copy
    )
    return found.stdout.decode().strip()


def one_round(server: RunningServer, scenario: Scenario, body: Path, args: argparse.Namespace) -> dict[str, Any]:
    server.wait_idle()
    before = server.cpu_seconds()
    result = run_wrk(server.url + "/score", body, scenario.content_type, args.concurrency, args.duration)
    cpu = server.cpu_seconds() - before
    result["cpu_us_per_request"] = cpu / max(result["requests"], 1) * 1e6
    return result


def summary(label: str, values: list[float]) -> str:
    return f"{label} median {statistics.median(values):.3f} (min {min(values):.3f}, max {max(values):.3f})"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base")
    parser.add_argument("head")
    parser.add_argument("--scenario", default="raw_1mb", choices=sorted(BY_NAME))
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=8, help="timed runs of each revision (default 8)")
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per run (default 3)")
    parser.add_argument("--out", type=Path, help="JSON lines of every run")
    parser.add_argument("--base-env", action="append", default=[], metavar="KEY=VALUE", help="for BASE's server only")
    parser.add_argument("--head-env", action="append", default=[], metavar="KEY=VALUE", help="for HEAD's server only")
    args = parser.parse_args(argv)
    check_tools()
    scenario = BY_NAME[args.scenario]
    kind = ServerKind("scoring_runtime", args.workers)
    with tempfile.TemporaryDirectory(prefix="ab-") as work, contextlib.ExitStack() as stack:
        sink: TelemetrySink | None = None
        if any("{sink}" in pair for pair in args.base_env + args.head_env):
            sink = stack.enter_context(TelemetrySink())
        root = Path(work)
        body = root / "body"
        body.write_bytes(scenario.body())
        servers: dict[str, RunningServer] = {}
        described: dict[str, str] = {}
        try:
            for side, revision in (("base", args.base), ("head", args.head)):
                folder = root / side
                folder.mkdir()
                described[side] = export(revision, folder)
                if served_from(folder) != str(folder / "scoring_runtime"):
                    raise SystemExit(f"{revision} would not be served from its export: check PYTHONPATH handling")
                env = {"PYTHONPATH": str(folder)}
                for pair in getattr(args, f"{side}_env"):
                    name, _, value = pair.partition("=")
                    env[name] = value.replace("{sink}", sink.url) if sink is not None else value
                servers[side] = RunningServer(kind, scenario, root / f"{side}.log", None, extra_env=env)
            for server in servers.values():
                server.wait_ready()
                run_wrk(server.url + "/score", body, scenario.content_type, args.concurrency, 1.0)  # warm-up
            runs: dict[str, list[dict[str, Any]]] = {"base": [], "head": []}
            for index in range(args.rounds):
                order = ("base", "head") if index % 4 in (0, 3) else ("head", "base")
                for side in order:
                    result = one_round(servers[side], scenario, body, args)
                    runs[side].append(result)
                    print(
                        f"round {index + 1:2} {side}: {result['rps']:8,.0f} req/s  p99 {result['p99_ms']:7.2f} ms  "
                        f"cpu {result['cpu_us_per_request']:7.1f} us/req  errors {result['errors_total']}",
                        flush=True,
                    )
        finally:
            for server in servers.values():
                server.stop()
    if args.out:
        with args.out.open("w") as lines:
            for side, results in runs.items():
                for result in results:
                    lines.write(json.dumps({"side": side, "revision": getattr(args, side), **result}) + "\n")
    pairs = list(zip(runs["base"], runs["head"], strict=True))
    cpu = [h["cpu_us_per_request"] / b["cpu_us_per_request"] for b, h in pairs]
    rps = [h["rps"] / b["rps"] for b, h in pairs]
    p99 = [h["p99_ms"] / b["p99_ms"] for b, h in pairs]
    setup = f"c={args.concurrency}, {args.workers} worker(s), {args.rounds} rounds of {args.duration:g} s"
    print(f"\n{scenario.name}, {setup}")
    print(f"base {args.base}: {described['base']}")
    print(f"head {args.head}: {described['head']}")
    for side in ("base", "head"):
        values = [r["cpu_us_per_request"] for r in runs[side]]
        print(f"  {side} cpu us/request: median {statistics.median(values):.1f}")
    print("  head/base " + summary("cpu per request", cpu))
    print("  head/base " + summary("req/s", rps))
    print("  head/base " + summary("p99", p99))
    errors = sum(r["errors_total"] for results in runs.values() for r in results)
    print(f"  errors: {errors}")
    if sink is not None:
        print(f"  the sink received {sink.posts} POSTs, {sink.received:,} bytes")


if __name__ == "__main__":
    main()
