"""The benchmark's own tools, without running wrk or any server: the wrk output parser and the report."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_servers  # noqa: E402
import bench_wrk  # noqa: E402
import report  # noqa: E402

DATA = Path(__file__).resolve().parents[1] / "data"


def test_parse_wrk_reads_the_summary_line_of_a_real_run() -> None:
    result = bench_wrk.parse_wrk((DATA / "wrk_output.txt").read_text())
    assert result["requests"] == 19158
    assert result["seconds"] == pytest.approx(2.1, abs=0.001)
    assert result["rps"] == pytest.approx(9124.2, abs=0.5)  # wrk's own "Requests/sec" line
    assert (result["p50_ms"], result["p90_ms"], result["p99_ms"]) == (0.882, 1.143, 2.752)
    assert result["errors_total"] == 0


def test_parse_wrk_counts_errors_and_refuses_output_without_a_summary() -> None:
    line = (
        'WRK_JSON {"requests": 10, "duration_us": 1000000, "bytes": 1, "connect": 1, "read": 2, "write": 0, '
        '"status": 3, "timeout": 4, "mean_us": 1.0, "max_us": 2, "p50_us": 1, "p90_us": 1, "p99_us": 2}'
    )
    result = bench_wrk.parse_wrk("Running 1s test\n" + line + "\n")
    assert result["errors"] == {"connect": 1, "read": 2, "write": 0, "timeout": 4, "status": 3}
    assert result["errors_total"] == 10
    with pytest.raises(ValueError, match="WRK_JSON"):
        bench_wrk.parse_wrk("Running 1s test\n  0 requests in 1.00s\n")


def row(server: str, workers: int, concurrency: int, rps: float, **extra: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "run": "20260101T000000Z",
        "settings": {"duration_s": 3.0, "rounds": 3, "warmup_s": 1.0},
        "versions": {"commit": "abc1234", "wrk": "wrk 4.1.0"},
        "scenario": "echo",
        "server": server,
        "workers": workers,
        "concurrency": concurrency,
        "requests": int(rps * 3),
        "rps": rps,
        "p99_ms": 1000 / rps,
        "cpu_us_per_request": 1e6 / rps,
        "errors_all_rounds": 0,
        "log_bytes_per_request": 0.0 if server in ("floor", "wire") else 90.0,
        "core_other_busy": 0.1,
        "idle_pss_mib": {"floor": 60.0, "scoring_runtime": 40.0, "reference": 80.0, "wire": 30.0}[server],
        "after_load_pss_mib": 90.0,
        "cold_start_s": 0.4,
        "body_bytes": 80,
        "response_bytes": 86,
    }
    values.update(extra)
    return values


def test_report_renders_ratios_and_verdicts(tmp_path: Path) -> None:
    rows = []
    for concurrency in (1, 8, 64):
        rows.append(row("floor", 1, concurrency, 20000.0, errors_warmup=2))
        # the memory phase's load runs once per server: its errors are on every row of that server, counted once
        rows.append(row("reference", 1, concurrency, 2000.0, cold_start_s=0.5, errors_alone_load=5))
        # 9x the reference's req/s, but twice the floor's CPU per request and an error in one round
        rows.append(row("scoring_runtime", 1, concurrency, 18000.0, cpu_us_per_request=100.0, errors_all_rounds=1))
    # a reference p99 at the run's length (3 s) is not a latency to compare against: left out of the p99 target
    rows.append(row("reference", 1, 64, 8.0, scenario="json_5mb", p99_ms=2950.0))
    rows.append(row("scoring_runtime", 1, 64, 20.0, scenario="json_5mb", p99_ms=2990.0))
    source = tmp_path / "run.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    report.main([str(source), "--out-dir", str(tmp_path / "out"), "--no-chart"])
    text = (tmp_path / "out" / "RESULTS.md").read_text()
    assert (tmp_path / "out" / "RESULTS.jsonl").read_text() == source.read_text()
    assert "| echo, 1 worker, c=8: req/s at least 8x the reference's | 9.00x | **pass** |" in text
    assert "| echo, 1 worker, c=8: CPU per request within 1.5x the floor's | 2.00x | **FAIL** |" in text
    assert "| numpy_1x10, 1 worker, c=8: req/s at least 5x the reference's | n/a | not measured |" in text
    p99_row = (
        "| p99 at c=64 at most 1/5 of the reference's, every scenario and worker count | worst 0.11x (echo w1); left "
    )
    assert p99_row + "out, the reference's p99 reaching the run's length: json_5mb | **pass** |" in text
    assert "3 errors in 4 measurements" in text and "(the other servers: 11)" in text
    assert "worst 0.80x of the reference's (echo) | **pass** |" in text  # cold start 0.4 s against 0.5 s
    # one table row per server, with our req/s against the reference's and the floor's
    assert "| scoring_runtime w1 | 18,000 (9.00x ref, 0.90x floor) |" in text
    assert "| floor w1 | 20,000 | 20,000 | 20,000 |" in text


def test_a_failing_p99_cell_is_shown_beside_the_wire_servers_p99_in_the_same_cell(tmp_path: Path) -> None:
    rows = []
    for concurrency in (1, 8, 64):
        for scenario in ("numpy_1000x10", "raw_1mb"):
            rows.append(row("floor", 1, concurrency, 1000.0, scenario=scenario))
            rows.append(row("reference", 1, concurrency, 250.0, scenario=scenario, p99_ms=300.0))
            rows.append(row("reference", 2, concurrency, 260.0, scenario=scenario, p99_ms=280.0))
            rows.append(row("scoring_runtime", 1, concurrency, 1400.0, scenario=scenario, p99_ms=66.0))
            rows.append(row("scoring_runtime", 2, concurrency, 1300.0, scenario=scenario, p99_ms=70.0, wrk_busy=0.99))
            rows.append(row("wire", 1, concurrency, 1200.0, scenario=scenario, p99_ms=140.0, wrk_busy=0.995))
    source = tmp_path / "run.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    report.main([str(source), "--out-dir", str(tmp_path), "--no-chart"])
    text = (tmp_path / "RESULTS.md").read_text()
    # the worst cell is 2 workers (70 / 280 = 0.25); the wire server's 140 ms is set against that cell's reference,
    # and how busy wrk kept its own core in that run is said beside it. The 1 MB cells, client-bound, are shown and
    # not judged.
    assert (
        "| worst 0.25x (numpy_1000x10 w2); in that cell the bare-socket wire server's p99 is 140.0 ms, 0.50x the "
        "reference's; wrk itself kept its core 99% busy in our run of that cell; not judged, client-bound: "
        "raw_1mb w1 0.22x, raw_1mb w2 0.25x (wrk 99% busy) | **FAIL** |"
    ) in text
    # the scenario's line gives wrk's load for every server that recorded it, and only those
    assert "At c=64 wrk itself kept its core busy: scoring_runtime w2 99%, wire w1 100%." in text
    # the wire's row comes before the floor's and carries its ratio to the reference too
    assert text.index("| wire w1 | 1,200 (4.80x ref, 1.20x floor) |") < text.index("| floor w1 |")


def test_the_client_bound_cell_alone_does_not_fail_the_p99_target(tmp_path: Path) -> None:
    rows = []
    for concurrency in (1, 8, 64):
        for scenario, ours_p99 in (("echo", 10.0), ("raw_1mb", 70.0)):
            rows.append(row("floor", 1, concurrency, 1000.0, scenario=scenario))
            rows.append(row("reference", 1, concurrency, 250.0, scenario=scenario, p99_ms=280.0))
            rows.append(row("scoring_runtime", 1, concurrency, 1400.0, scenario=scenario, p99_ms=ours_p99))
    source = tmp_path / "run.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    report.main([str(source), "--out-dir", str(tmp_path), "--no-chart"])
    text = (tmp_path / "RESULTS.md").read_text()
    assert "| worst 0.04x (echo w1); not judged, client-bound: raw_1mb w1 0.25x | **pass** |" in text


def test_the_commit_is_dirty_for_changed_code_but_not_for_the_previous_runs_results(tmp_path: Path) -> None:
    def git(*args: str) -> None:
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)

    (tmp_path / "benchmarks").mkdir()
    (tmp_path / "server.py").write_text("one\n")
    for path in bench_servers.OWN_OUTPUT:
        (tmp_path / path).write_text("old results\n")
    git("init", "-q")
    git("add", "-A")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "start")
    clean = bench_servers.measured_commit(tmp_path)
    assert clean and not clean.endswith("-dirty")

    for path in bench_servers.OWN_OUTPUT:
        (tmp_path / path).write_text("new results\n")
    (tmp_path / "untracked.txt").write_text("a download\n")
    assert bench_servers.measured_commit(tmp_path) == clean

    (tmp_path / "server.py").write_text("two\n")
    assert bench_servers.measured_commit(tmp_path) == clean + "-dirty"


def test_the_commit_outside_a_repository_is_unknown(tmp_path: Path) -> None:
    assert bench_servers.measured_commit(tmp_path) == "unknown"
