"""The no-code scenarios' parts, without running wrk or any server: bodies, answer checks, MLServer's settings, the
server command lines, and the report's no-code section."""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench  # noqa: E402
import bench_nocode  # noqa: E402
import bench_scenarios  # noqa: E402
import bench_servers  # noqa: E402
import report  # noqa: E402

ROWS = [[5.1, 3.5, 1.4, 0.2], [7.0, 3.2, 4.7, 1.4]]


def test_a_v2_body_is_one_flat_row_major_tensor_asking_for_one_output() -> None:
    body = json.loads(bench_nocode.v2_body(ROWS, "FP32", "output_label"))
    assert body == {
        "inputs": [
            {"name": "input", "shape": [2, 4], "datatype": "FP32", "data": [5.1, 3.5, 1.4, 0.2, 7.0, 3.2, 4.7, 1.4]}
        ],
        "outputs": [{"name": "output_label"}],
    }
    assert bench_nocode.body_rows(bench_nocode.v2_body(ROWS, "FP64", "predict")) == ROWS


def test_a_score_body_has_the_rows_and_no_method_so_a_classifier_answers_probabilities() -> None:
    assert json.loads(bench_nocode.score_body(ROWS)) == {"data": ROWS}
    assert bench_nocode.body_rows(bench_nocode.score_body(ROWS)) == ROWS


def test_the_scenarios_send_the_sample_models_rows() -> None:
    rows = json.loads((ROOT / "sample_models/iris/sample-request.json").read_text())["data"]
    assert bench_nocode.iris_rows() == rows
    for name in bench_nocode.NO_CODE:
        assert bench_nocode.body_rows(bench_scenarios.BY_NAME[name].body()) == rows


def test_labels_match_in_ours_and_mlservers_shapes_and_nothing_else_does() -> None:
    expected = b"[0, 1, 2]"
    ours = {"model_name": "iris", "outputs": [{"name": "predict", "shape": [3], "data": [0, 1, 2]}]}
    mlserver = {"outputs": [{"name": "predict", "shape": [3, 1], "datatype": "INT64", "data": [0, 1, 2]}]}
    nested = {"outputs": [{"name": "predict", "shape": [3, 1], "data": [[0], [1], [2]]}]}
    for answer in (ours, mlserver, nested):
        assert bench_nocode.same_labels(json.dumps(answer).encode(), expected)
    assert not bench_nocode.same_labels(json.dumps({"outputs": [{"data": [0, 2, 1]}]}).encode(), expected)
    assert not bench_nocode.same_labels(b'{"error": "no such model"}', expected)
    assert not bench_nocode.same_labels(b"not json", expected)


def test_probabilities_match_within_the_tolerance_row_by_row() -> None:
    expected = json.dumps([[0.9, 0.1], [0.2, 0.8]]).encode()
    assert bench_nocode.same_probabilities(b"[[0.9, 0.1], [0.2, 0.8000000000001]]", expected)
    assert not bench_nocode.same_probabilities(b"[[0.9, 0.1], [0.2, 0.81]]", expected)
    assert not bench_nocode.same_probabilities(b"[[0.9, 0.1]]", expected)
    assert not bench_nocode.same_probabilities(b"[[0.9, 0.1], [0.2, 0.8, 0.0]]", expected)
    assert not bench_nocode.same_probabilities(b'{"error": 1}', expected)


def test_the_expected_answers_come_from_the_sample_model_itself() -> None:
    pytest.importorskip("sklearn")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        bench_nocode._iris_model()
    # At the dependency floors, the model built by a newer scikit-learn may not even predict: its answers are the
    # benchmark's, which runs in the main venv.
    if any("Trying to unpickle" in str(warning.message) for warning in caught):
        pytest.skip("the sample model was built with another scikit-learn")
    rows = bench_nocode.iris_rows()
    assert json.loads(bench_nocode.expected_labels(bench_nocode.v2_body(rows, "FP64", "predict"))) == [0, 1, 2]
    probabilities = json.loads(bench_nocode.expected_probabilities(bench_nocode.score_body(rows)))
    assert [max(range(3), key=row.__getitem__) for row in probabilities] == [0, 1, 2]
    assert all(abs(sum(row) - 1.0) < 1e-9 for row in probabilities)


def test_mlserver_is_set_up_in_process_on_127_0_0_1_with_the_model_under_its_name(tmp_path: Path) -> None:
    model_dir = ROOT / "sample_models/iris/model"
    command = bench_nocode.mlserver_command(model_dir, (8001, 8002, 8003), tmp_path)
    assert command == [str(bench_nocode.MLSERVER_VENV / "bin/mlserver"), "start", str(tmp_path)]
    settings = json.loads((tmp_path / "settings.json").read_text())
    assert settings == {
        "host": "127.0.0.1",
        "http_port": 8001,
        "grpc_port": 8002,
        "metrics_port": 8003,
        "metrics_dir": str(tmp_path / "metrics"),
        "parallel_workers": 0,
    }
    model = json.loads((tmp_path / "iris/model-settings.json").read_text())
    assert model == {
        "name": "iris",
        "implementation": "mlserver_sklearn.SKLearnModel",
        "parameters": {"uri": str(model_dir / "model.joblib")},
    }


def test_mlserver_batching_differs_from_mlserver_only_by_adaptive_batching_in_the_model_settings(
    tmp_path: Path,
) -> None:
    model_dir = ROOT / "sample_models/iris/model"
    plain, batching = tmp_path / "plain", tmp_path / "batching"
    plain.mkdir()
    batching.mkdir()
    bench_nocode.mlserver_command(model_dir, (8001, 8002, 8003), plain)
    kind = bench_servers.ServerKind("mlserver-batching", 1)
    command = bench_servers.server_command(kind, bench_scenarios.BY_NAME["v2_sklearn"], 8001, None, batching)
    assert command == [str(bench_nocode.MLSERVER_VENV / "bin/mlserver"), "start", str(batching)]
    model = json.loads((batching / "iris/model-settings.json").read_text())
    assert model == {
        **json.loads((plain / "iris/model-settings.json").read_text()),
        "max_batch_size": 32,
        "max_batch_time": 0.001,
    }
    # the server-wide settings are the same but for the ports gRPC and metrics were given and the scratch folder
    ignored = ("grpc_port", "metrics_port", "metrics_dir")
    server = json.loads((batching / "settings.json").read_text())
    assert {k: v for k, v in server.items() if k not in ignored} == {
        k: v for k, v in json.loads((plain / "settings.json").read_text()).items() if k not in ignored
    }


def test_mlserver_declares_the_adaptive_batching_fields_the_benchmark_sets() -> None:
    # MLServer's ModelSettings ignores unknown keys: a misspelt field would leave batching silently off.
    found = sorted(bench_nocode.MLSERVER_VENV.glob("lib/python*/site-packages/mlserver/settings.py"))
    if not found:
        pytest.skip("no MLServer venv: `make bench` creates it")
    source = found[0].read_text()
    for field, value in bench_nocode.ADAPTIVE_BATCHING.items():
        assert f"\n    {field}: {type(value).__name__} = " in source


def test_ours_serves_the_no_code_scenarios_with_no_entry_script(tmp_path: Path) -> None:
    kind = bench_servers.ServerKind("scoring_runtime", 1)
    command = bench_servers.server_command(kind, bench_scenarios.BY_NAME["v2_onnx"], 9000, None, tmp_path)
    assert "--entry_script" not in command
    model_dir = str(ROOT / "sample_models/iris-onnx/model")
    assert command[command.index("--model_dir") + 1] == model_dir
    assert command[command.index("--model_name") + 1] == "iris"
    # the existing scenarios still give theirs
    assert "--entry_script" in bench_servers.server_command(kind, bench_scenarios.BY_NAME["echo"], 9000, None)
    mlserver = bench_servers.ServerKind("mlserver", 1)
    assert bench_servers.server_command(mlserver, bench_scenarios.BY_NAME["v2_sklearn"], 9000, None, tmp_path)[1:] == [
        "start",
        str(tmp_path),
    ]


def test_each_scenario_takes_only_its_servers() -> None:
    def taking(name: str) -> list[str]:
        scenario = bench_scenarios.BY_NAME[name]
        return [k.label for k in bench_servers.ALL_SERVERS if scenario.takes(k.name, k.workers)]

    assert taking("v2_sklearn") == ["scoring_runtime w1", "mlserver w1", "mlserver-batching w1"]
    assert taking("score_sklearn") == ["scoring_runtime w1", "reference w1"]
    assert taking("v2_onnx") == ["scoring_runtime w1"]
    assert not {"mlserver w1", "mlserver-batching w1"} & set(taking("echo")) and len(taking("echo")) == 6


def test_servers_picks_mlserver_batching_apart_from_mlserver() -> None:
    args = bench.parse_args(["--scenarios", "v2_sklearn", "--servers", "scoring_runtime,mlserver-batching"])
    assert [k.label for k in bench.kinds(args.scenarios[0], args.servers)] == [
        "scoring_runtime w1",
        "mlserver-batching w1",
    ]
    args = bench.parse_args(["--scenarios", "v2_sklearn", "--servers", "mlserver"])
    assert [k.label for k in bench.kinds(args.scenarios[0], args.servers)] == ["mlserver w1"]


def row(scenario: str, server: str, concurrency: int, rps: float, p99_ms: float, **extra: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "run": "20260101T000000Z",
        "settings": {"duration_s": 3.0, "rounds": 3, "warmup_s": 1.0},
        "versions": {"commit": "abc1234", "mlserver": "1.7.1", "mlserver scikit-learn": "1.5.2"},
        "scenario": scenario,
        "server": server,
        "workers": 1,
        "concurrency": concurrency,
        "requests": int(rps * 3),
        "rps": rps,
        "p99_ms": p99_ms,
        "cpu_us_per_request": 1e6 / rps,
        "errors_all_rounds": 0,
        "log_bytes_per_request": 80.0,
        "core_other_busy": 0.0,
        "idle_pss_mib": 50.0,
        "after_load_pss_mib": 55.0,
        "cold_start_s": 0.5,
        "body_bytes": 150,
        "response_bytes": 120,
        "answer_matches_floor": True,
    }
    values.update(extra)
    return values


def test_the_report_judges_the_no_code_targets_against_their_own_peers(tmp_path: Path) -> None:
    rows = []
    for concurrency in (1, 8, 64):
        rows.append(row("v2_sklearn", "scoring_runtime", concurrency, 4000.0, 10.0))
        rows.append(row("v2_sklearn", "mlserver", concurrency, 1000.0, 25.0, answer_matches_floor=concurrency != 8))
        # faster than ours: were the targets set against it, they would change
        rows.append(row("v2_sklearn", "mlserver-batching", concurrency, 8000.0, 2.0))
        rows.append(row("score_sklearn", "scoring_runtime", concurrency, 4000.0, 10.0))
        rows.append(row("score_sklearn", "reference", concurrency, 1000.0, 300.0))
        rows.append(row("v2_onnx", "scoring_runtime", concurrency, 6000.0, 5.0, log_bytes_per_request=0.0))
    source = tmp_path / "run.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    report.main([str(source), "--out-dir", str(tmp_path), "--no-chart"])
    text = (tmp_path / "RESULTS.md").read_text()
    assert "| v2_sklearn, 1 worker, c=8: req/s at least 3x MLServer's | 4.00x | **pass** |" in text
    # 10 ms against 25 ms is 0.4: more than a third
    assert "| v2_sklearn, 1 worker, c=64: p99 at most 1/3 of MLServer's | 0.40x | **FAIL** |" in text
    assert "c=8: req/s at least 5x the reference's (a hand-written score.py) | 4.00x | **FAIL** |" in text
    assert "ours on `v2_onnx` (the same classifier through ONNX Runtime, FP32) makes 1.50x the req/s" in text
    assert "with 0.50x its p99 at c=64" in text
    assert "these differed: mlserver w1 on v2_sklearn." in text
    no_batching = [r for r in rows if r["server"] != "mlserver-batching"]
    source.write_text("".join(json.dumps(r) + "\n" for r in no_batching))
    report.main([str(source), "--out-dir", str(tmp_path / "plain"), "--no-chart"])
    assert "adaptive batching" not in (tmp_path / "plain" / "RESULTS.md").read_text()
    assert "| no errors in any no-code run of ours | 0 errors | **pass** |" in text
    assert "| 0 to 80 bytes of log per request; none on v2_onnx | **FAIL** |" in text
    # Issues 5 and 18's targets are for the scripted scenarios: a run of no-code scenarios alone leaves them out
    assert "## Targets (issues 5 and 18)" not in text
    # ours is set against MLServer on V2, against the reference on /score, and against no floor: there is none
    assert "| scoring_runtime w1 | 4,000 (4.00x mlserver) | 4,000 (4.00x mlserver) |" in text
    assert "| scoring_runtime w1 | 4,000 (4.00x ref) |" in text
    assert "| scoring_runtime w1 | 6,000 | 6,000 | 6,000 | 5.0 ms |" in text
    # MLServer with adaptive batching: a row of its own after MLServer's, for context, and said so once
    assert text.index("| mlserver w1 | 1,000 |") < text.index(
        "| mlserver-batching w1 | 8,000 | 8,000 | 8,000 | 2.0 ms |"
    )
    said = (
        "MLServer's adaptive batching is off by default; the `mlserver-batching` row of `v2_sklearn` turns it on, "
        "for context and judged by no target: `max_batch_size` 32, ours' batch cap, and `max_batch_time` 1 ms,"
    )
    assert text.count(said) == 1
    assert "Versions: mlserver 1.7.1, mlserver scikit-learn 1.5.2." in text


def test_a_run_without_no_code_scenarios_has_no_no_code_section(tmp_path: Path) -> None:
    rows = [row("echo", server, c, 1000.0, 5.0) for server in ("floor", "scoring_runtime") for c in (1, 8, 64)]
    source = tmp_path / "run.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    report.main([str(source), "--out-dir", str(tmp_path), "--no-chart"])
    text = (tmp_path / "RESULTS.md").read_text()
    assert "No-code" not in text and "| scoring_runtime w1 | 1,000 (n/a ref, 1.00x floor) |" in text
