"""The benchmark's scenarios: which score.py, which model folder, and the request body sent to every server."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench_nocode import (
    IRIS,
    IRIS_ONNX,
    IRIS_SCRIPT,
    MODEL_NAME,
    V2_PATH,
    expected_labels,
    expected_probabilities,
    iris_rows,
    same_labels,
    same_probabilities,
    score_body,
    v2_body,
)

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DIABETES = ROOT / "sample_models" / "diabetes"


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    script: Path
    body: Callable[[], bytes]
    content_type: str = "application/json"
    model_dir: Path | None = None
    quick: bool = False  # part of the --quick smoke run
    # The no-code scenarios (bench_nocode.py): ours serves model_dir with no entry script, under model_name; the
    # POST goes to `path`; only `servers` take part (names, or name:workers as --servers spells them); the answer
    # is checked against `expected(body)` with `same` instead of against the floor's.
    no_code: bool = False
    model_name: str | None = None
    path: str = "/score"
    servers: tuple[str, ...] = ("wire", "floor", "scoring_runtime", "reference")
    expected: Callable[[bytes], bytes] | None = None
    same: Callable[[bytes, bytes], bool] | None = None

    def takes(self, name: str, workers: int) -> bool:
        return name in self.servers or f"{name}:{workers}" in self.servers


def _rows(count: int, digits: int, seed: int) -> list[list[float]]:
    rng = random.Random(seed)
    return [[round(rng.uniform(-1, 1), digits) for _ in range(10)] for _ in range(count)]


def echo_body() -> bytes:
    body = json.dumps({"data": "x" * 68}).encode()
    assert len(body) == 80
    return body


def pandas_body() -> bytes:
    rng = random.Random(3)
    records = [
        {"x": round(rng.uniform(0, 10), 3), "y": round(rng.uniform(0, 10), 3), "label": f"r{i}"} for i in range(10)
    ]
    return json.dumps({"data": records}).encode()


SCENARIOS = [
    Scenario("echo", "Plain echo (80-byte body)", HERE / "scenarios/echo.py", echo_body, quick=True),
    Scenario(
        "numpy_1x10",
        "Typed numpy 1x10",
        HERE / "scenarios/numpy_1x10.py",
        lambda: json.dumps({"data": _rows(1, 4, 1)}).encode(),
        quick=True,
    ),
    Scenario(
        "numpy_1000x10",
        "Typed numpy 1000x10 (about 100 KB body)",
        HERE / "scenarios/numpy_1000x10.py",
        lambda: json.dumps({"data": _rows(1000, 6, 2)}).encode(),
    ),
    Scenario(
        "pandas_10x3", "Typed pandas records, 10 rows x 3 columns", HERE / "scenarios/pandas_10x3.py", pandas_body
    ),
    Scenario(
        "raw_1mb",
        "@rawhttp 1 MB binary echo",
        HERE / "scenarios/raw_1mb.py",
        lambda: random.Random(4).randbytes(1 << 20),
        content_type="application/octet-stream",
    ),
    Scenario(
        "diabetes",
        "Diabetes sample model (typed numpy 1x10, ridge regression)",
        DIABETES / "score.py",
        lambda: json.dumps({"data": _rows(1, 4, 5)}).encode(),
        model_dir=DIABETES / "model",
    ),
    Scenario("json_5mb", "5 MB JSON response", HERE / "scenarios/json_5mb.py", lambda: b'{"rows": 100000}'),
    Scenario(
        "v2_sklearn",
        "No-code scikit-learn iris on V2 (FP64 [3,4], output predict), against MLServer",
        IRIS_SCRIPT,
        lambda: v2_body(iris_rows(), "FP64", "predict"),
        model_dir=IRIS / "model",
        no_code=True,
        model_name=MODEL_NAME,
        path=V2_PATH,
        servers=("scoring_runtime:1", "mlserver:1", "mlserver-batching:1"),
        expected=expected_labels,
        same=same_labels,
    ),
    Scenario(
        "score_sklearn",
        "No-code scikit-learn iris on /score (predict_proba), against the reference's hand-written score.py",
        IRIS_SCRIPT,
        lambda: score_body(iris_rows()),
        model_dir=IRIS / "model",
        no_code=True,
        model_name=MODEL_NAME,
        servers=("scoring_runtime:1", "reference:1"),
        expected=expected_probabilities,
        same=same_probabilities,
    ),
    Scenario(
        "v2_onnx",
        "No-code ONNX iris on V2 (FP32 [3,4], output output_label); MLServer has no ONNX runtime",
        IRIS_SCRIPT,
        lambda: v2_body(iris_rows(), "FP32", "output_label"),
        model_dir=IRIS_ONNX / "model",
        no_code=True,
        model_name=MODEL_NAME,
        path=V2_PATH,
        servers=("scoring_runtime:1",),
        expected=expected_labels,
        same=same_labels,
    ),
]
BY_NAME = {scenario.name: scenario for scenario in SCENARIOS}
