"""RESULTS.md, a chart and a copy of the data, from one run of bench.py.

Usage: python benchmarks/report.py benchmarks/results/<run>.jsonl [--out-dir benchmarks]

Writes <out-dir>/RESULTS.md (the issue's targets with pass or fail, then one table per scenario with ratios against
the reference at the same worker count and against the floor), <out-dir>/results-chart.png (req/s and p99 by
concurrency) and <out-dir>/RESULTS.jsonl (the rows both came from).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
from pathlib import Path

from bench_scenarios import BY_NAME, HERE
from report_nocode import COLORS as NOCODE_COLORS, NO_CODE, PEERS, nocode_targets
from report_rows import OURS, Key, Row, errors, load, noise, ratio, times, value
from report_targets import script_targets

CHART = "results-chart.png"
COLORS = {
    "wire w1": "tab:green",
    "floor w1": "tab:gray",
    "scoring_runtime w1": "tab:blue",
    "scoring_runtime w2": "tab:cyan",
    "reference w1": "tab:red",
    "reference w2": "tab:orange",
    **NOCODE_COLORS,
}


def scenarios(rows: dict[Key, Row]) -> list[str]:
    present = {key[0] for key in rows}
    return [name for name in BY_NAME if name in present]


def servers(rows: dict[Key, Row], scenario: str) -> list[tuple[str, int]]:
    order = {"wire": 0, "floor": 1, OURS: 2, "reference": 3, "mlserver": 4}
    return sorted({(k[1], k[2]) for k in rows if k[0] == scenario}, key=lambda s: (order.get(s[0], 9), s[1]))


def cell(rows: dict[Key, Row], key: Key, field: str, fmt: str) -> str:
    """The value, then its ratio to the reference (same workers) for our rows and the wire's, and to the floor for all
    but the floor."""
    ours = value(rows, key, field)
    if ours is None:
        return "n/a"
    text = fmt.format(ours)
    scenario, server, workers, concurrency = key
    ratios = []
    # The no-code scenarios have their own peer (MLServer on V2; none for ONNX) and no floor.
    peer = next(
        (p for p in PEERS if any(k[:2] == (scenario, p) for k in rows)), None if scenario in NO_CODE else "reference"
    )
    if server in (OURS, "wire") and peer is not None:
        ratios.append(f"{times(ratio(ours, value(rows, (scenario, peer, workers, concurrency), field)))} {PEERS[peer]}")
    if server != "floor" and any(k[:2] == (scenario, "floor") for k in rows):
        ratios.append(f"{times(ratio(ours, value(rows, (scenario, 'floor', 1, concurrency), field)))} floor")
    return f"{text} ({', '.join(ratios)})" if ratios else text


def scenario_table(rows: dict[Key, Row], scenario: str) -> list[str]:
    any_row = next(r for k, r in rows.items() if k[0] == scenario)
    lines = [
        f"## {BY_NAME[scenario].title}",
        "",
        f"`{scenario}`: request body {any_row['body_bytes']:,} bytes, answer {any_row['response_bytes']:,} bytes. "
        f"Other processes used {noise(rows, scenario):.0%} of the server's core and "
        f"{noise(rows, scenario, 'wrk_core_other_busy'):.0%} of wrk's during the reported runs (median)."
        + client_load(rows, scenario),
        "",
        "| server | req/s c=1 | req/s c=8 | req/s c=64 | p99 c=64 | CPU/request c=8 | idle PSS | PSS after load "
        "| cold start | log/request | errors |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for server, workers in servers(rows, scenario):
        key = (scenario, server, workers)
        mine = [r for k, r in rows.items() if k[:3] == key]
        first = mine[0]
        cells = [f"{server} w{workers}"]
        cells += [cell(rows, (*key, c), "rps", "{:,.0f}") for c in (1, 8, 64)]
        cells.append(cell(rows, (*key, 64), "p99_ms", "{:.1f} ms"))
        cells.append(cell(rows, (*key, 8), "cpu_us_per_request", "{:,.0f} µs"))
        cells.append(cell(rows, (*key, 8), "idle_pss_mib", "{:.0f} MiB"))
        cells.append(f"{first['after_load_pss_mib']:.0f} MiB")
        cells.append(cell(rows, (*key, 8), "cold_start_s", "{:.2f} s"))
        cells.append(f"{statistics.median(r['log_bytes_per_request'] for r in mine):.0f} B")
        cells.append(str(errors(rows, scenario, server, workers)))
        lines.append("| " + " | ".join(cells) + " |")
    return [*lines, ""]


def client_load(rows: dict[Key, Row], scenario: str) -> str:
    """How busy wrk kept its own core at c=64, per server (empty for runs that did not record it)."""
    loads = [
        f"{k[1]} w{k[2]} {r['wrk_busy']:.0%}"
        for k, r in rows.items()
        if k[0] == scenario and k[3] == 64 and "wrk_busy" in r
    ]
    return f" At c=64 wrk itself kept its core busy: {', '.join(loads)}." if loads else ""


def chart(rows: dict[Key, Row], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = scenarios(rows)
    figure, axes = plt.subplots(len(names), 2, figsize=(11, 2.8 * len(names)), squeeze=False)
    for line, scenario in enumerate(names):
        for column, (field, what) in enumerate((("rps", "req/s"), ("p99_ms", "p99 latency (ms)"))):
            axis = axes[line][column]
            for server, workers in servers(rows, scenario):
                points = sorted((k[3], r[field]) for k, r in rows.items() if k[:3] == (scenario, server, workers))
                label = f"{server} w{workers}"
                style = {"floor": "--", "wire": "-.", "reference": ":"}.get(server, "-")
                axis.plot(
                    [p[0] for p in points],
                    [p[1] for p in points],
                    style,
                    marker="o",
                    label=label,
                    color=COLORS.get(label),
                )
            axis.set_xscale("log", base=2)
            axis.set_yscale("log")
            axis.set_xticks([1, 8, 64], ["1", "8", "64"])
            axis.set_title(f"{scenario}: {what}", fontsize=10)
            axis.set_xlabel("concurrency (wrk connections)", fontsize=8)
            axis.grid(True, which="both", alpha=0.3)
    axes[0][0].legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=72)
    plt.close(figure)


def render(rows: dict[Key, Row]) -> str:
    first = next(iter(rows.values()))
    settings, found = first["settings"], first["versions"]
    other, other_wrk = noise(rows), noise(rows, None, "wrk_core_other_busy")
    foreign = sum(1 for r in rows.values() if r.get("foreign_wrk", 0))
    ended = max((r.get("measured_at", "") for r in rows.values()), default="")
    span = f" (ended {ended})" if ended else ""
    lines = [
        "# Benchmark results",
        "",
        f"Run `{first['run']}` of `benchmarks/bench.py`{span} at commit `{found.get('commit', '?')}`: each figure "
        f"is the best of {settings['rounds']} timed wrk runs of {settings['duration_s']:g} s per server and "
        f"concurrency (after a {settings['warmup_s']:g} s warm-up), the servers taking turns. The data is "
        f"[RESULTS.jsonl](RESULTS.jsonl); the chart is [{CHART}]({CHART}). Regenerate with `make bench`.",
        "",
        "Every server (its whole process tree) runs on core 1 and wrk on core 0, on 127.0.0.1, with default "
        "settings (access log on). In each cell, `(Nx ref, Nx floor)` is the value divided by the reference's at "
        "the same worker count and by the floor's. The floor (`floor_app.py`) is bare Starlette on uvicorn doing "
        "each scenario's work inline, without an access log. The wire (`wire_app.py`) is lower still: HTTP/1.1 "
        "parsed by hand over plain sockets in one epoll loop, the same work inline, no framework: what wrk "
        "measures against it is the scenario's work and the client's and kernel's cost, with no server machinery "
        "in between (its own answering order aside). CPU per request is the server tree's user+system time over "
        "the requests answered. PSS is summed over the tree, idle after one request and again after load, with no "
        "other server running. Cold start is spawn to the first 200 on `GET /` (`first_score_s` in the data: to "
        "the first scored answer). Each run starts once the server has finished what the previous run left queued "
        "(`idle_wait_s`); a run's latencies cannot exceed its length, so p99s near it are lower bounds. wrk's own "
        "CPU time over the run's length is `wrk_busy`: near 100%, the client had no time to spare, and its own "
        "loop, not the server, set the pace and much of the latency.",
        "",
        "Ratios, not absolute numbers, are what to compare: the machine is shared. In the median run other "
        f"processes (user, system and steal time, not interrupts) took {other:.0%} of the server's core and "
        f"{other_wrk:.0%} of wrk's; {foreign} of {len(rows)} reported runs started while another wrk was running. "
        "The speed of a core also varies, unseen. So the servers take turns in short runs and the best run of each "
        "is reported, for the noise to fall on all of them alike; `rounds_rps` in the data shows the spread.",
        "",
        "Versions: " + ", ".join(f"{name} {version}" for name, version in found.items() if name != "commit") + ".",
        "",
        *script_targets(rows),
        *nocode_targets(rows),
        f"![req/s and p99 by concurrency]({CHART})",
        "",
    ]
    for scenario in scenarios(rows):
        lines += scenario_table(rows, scenario)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("jsonl", type=Path)
    parser.add_argument("--out-dir", type=Path, default=HERE)
    parser.add_argument("--no-chart", action="store_true", help="skip the PNG (matplotlib not needed)")
    args = parser.parse_args(argv)
    rows = load(args.jsonl)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "RESULTS.md").write_text(render(rows))
    if args.jsonl.resolve() != (args.out_dir / "RESULTS.jsonl").resolve():
        shutil.copyfile(args.jsonl, args.out_dir / "RESULTS.jsonl")
    if not args.no_chart:
        chart(rows, args.out_dir / CHART)
    print(f"wrote {args.out_dir / 'RESULTS.md'}" + ("" if args.no_chart else f" and {args.out_dir / CHART}"))


if __name__ == "__main__":
    main()
