"""The unload benchmark's pure parts, without building models or running any server."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import unload_memory  # noqa: E402


def step(server: str, step: str, rss: float, model: str = "", cycle: int = 0) -> dict[str, Any]:
    return {"server": server, "step": step, "cycle": cycle, "model": model, "rss_mib": rss, "pss_mib": rss / 2}


RECORDS = [
    step("ours", "started", 50.0),
    step("ours", "idle", 100.0),
    step("ours", "loaded", 250.0, "forest_a", 1),
    step("ours", "unloaded", 130.0, "forest_a", 1),
    step("ours", "loaded", 230.0, "forest_b", 1),
    step("ours", "unloaded", 130.0, "forest_b", 1),
    step("ours", "final", 110.0),
    step("theirs", "idle", 200.0),
    step("theirs", "loaded", 300.0, "forest_a", 1),
    step("theirs", "unloaded", 300.0, "forest_a", 1),
    step("theirs", "final", 300.0),
]


def test_given_back_is_the_share_of_the_loads_growth_that_the_unload_returned() -> None:
    assert unload_memory.given_back(100.0, 250.0, 130.0) == 0.8
    assert unload_memory.given_back(100.0, 250.0, 250.0) == 0.0
    assert unload_memory.given_back(100.0, 100.0, 90.0) is None  # nothing grew: no share to speak of


def test_pairs_measure_each_load_from_the_sample_before_it() -> None:
    rows = unload_memory.pairs(RECORDS)
    assert [(r["server"], r["model"]) for r in rows] == [
        ("ours", "forest_a"),
        ("ours", "forest_b"),
        ("theirs", "forest_a"),
    ]
    assert (rows[1]["rss_before"], rows[1]["rss_loaded"], rows[1]["rss_unloaded"]) == (130.0, 230.0, 130.0)
    assert rows[0]["rss_given_back"] == 0.8 and rows[1]["rss_given_back"] == 1.0 and rows[2]["rss_given_back"] == 0.0
    assert rows[0]["pss_given_back"] == 0.8


def test_the_ratchet_is_the_final_sample_against_the_idle_one_and_the_table_says_it() -> None:
    assert unload_memory.ratchet(RECORDS) == {"ours": 10.0, "theirs": 100.0}
    table = unload_memory.markdown(unload_memory.pairs(RECORDS), RECORDS)
    assert "| ours | 1 | forest_a | 100.0 | 250.0 | 130.0 | 80% | 80% |" in table
    assert "- theirs: idle RSS 200.0 MiB, +100.0 MiB after all unloads" in table


def test_mlserver_gets_one_model_settings_per_model_and_loads_none_at_start(tmp_path: Path) -> None:
    command = unload_memory.mlserver_repository(Path("/models"), ["forest_a"], (1, 2, 3), tmp_path)
    settings = json.loads((tmp_path / "settings.json").read_text())
    assert settings["load_models_at_startup"] is False and settings["http_port"] == 1
    assert settings["parallel_workers"] == 0
    model = json.loads((tmp_path / "forest_a" / "model-settings.json").read_text())
    assert model["name"] == "forest_a" and model["implementation"] == "mlserver_sklearn.SKLearnModel"
    assert model["parameters"]["uri"] == "/models/forest_a/1/model.joblib"
    assert (tmp_path / unload_memory.WARMUP / "model-settings.json").exists()
    assert command[1:] == ["start", str(tmp_path)]


def test_ours_serves_the_folder_with_one_worker_on_loopback() -> None:
    command = unload_memory.our_command(Path("/models"), 8123)
    assert command[1:5] == ["-m", "scoring_runtime", "--model_dir", "/models"]
    assert command[-6:] == ["--worker_count", "1", "--host", "127.0.0.1", "--port", "8123"]
    assert unload_memory.model_names(3) == ["forest_a", "forest_b", "forest_c"]
