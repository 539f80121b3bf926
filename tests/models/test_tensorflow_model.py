"""TensorFlow SavedModels served without a script: TF Serving's predict API on /score, V2 inference, the signature.

Runs only where tensorflow is installed (its own CI step, .venv-tf); the tiny SavedModels are built once per run."""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from scoring_runtime.errors import BadRequest, ModelLoadError, ModelRefused
from scoring_runtime.models.base import LoadOptions
from scoring_runtime.models.tensorflow_model import TensorFlowModel, load_tensorflow
from scoring_runtime.models.tensors import TensorSpec

tf: Any = pytest.importorskip("tensorflow")

WEIGHTS = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 1]], dtype=np.float32)
BIAS = np.array([0.0, 0.5, 0.0], dtype=np.float32)
ROWS = [[1.0, 2.0, 3.0, 4.0], [0.0, 0.0, 0.0, 0.0]]
OPTIONS = LoadOptions()


class _Toy(tf.Module):  # type: ignore[misc]
    """serving_default: x [None, 4] → scores, label; mixed: three named inputs, a string among them; upper: one
    string input; half: an input of any rank; complex_abs: a dtype JSON cannot carry."""

    def __init__(self) -> None:
        super().__init__()
        self.weights = tf.Variable(WEIGHTS)
        self.bias = tf.Variable(BIAS)

    @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32, name="x")])
    def classify(self, x: Any) -> dict[str, Any]:
        scores = x @ self.weights + self.bias
        return {"scores": scores, "label": tf.argmax(scores, axis=1)}

    @tf.function(
        input_signature=[
            tf.TensorSpec([None], tf.float32, name="a"),
            tf.TensorSpec([None], tf.int64, name="count"),
            tf.TensorSpec([None], tf.string, name="text"),
        ]
    )
    def mixed(self, a: Any, count: Any, text: Any) -> dict[str, Any]:
        total = a + tf.cast(count, tf.float32)
        return {"total": total, "length": tf.strings.length(text), "text": tf.identity(text), "text_bytes": text}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="s")])
    def upper(self, s: Any) -> dict[str, Any]:
        return {"upper": tf.strings.upper(s)}

    @tf.function(input_signature=[tf.TensorSpec(None, tf.float32, name="v")])
    def half(self, v: Any) -> dict[str, Any]:
        return {"y": v / 2 + 3}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.complex64, name="z")])
    def complex_abs(self, z: Any) -> dict[str, Any]:
        return {"magnitude": tf.abs(z)}


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The toy saved four ways: its JSON signatures; without serving_default and with one JSON cannot carry; with only
    that one; and a module with no signatures at all."""
    root = tmp_path_factory.mktemp("tensorflow")
    toy = _Toy()
    signatures = {"serving_default": toy.classify, "mixed": toy.mixed, "upper": toy.upper, "half": toy.half}
    tf.saved_model.save(toy, str(root / "toy"), signatures=signatures)
    tf.saved_model.save(toy, str(root / "partial"), signatures={"alpha": toy.complex_abs, "beta": toy.half})
    tf.saved_model.save(toy, str(root / "complex"), signatures={"serving_default": toy.complex_abs})
    tf.saved_model.save(tf.Module(), str(root / "bare"))
    return {name: root / name for name in ("toy", "partial", "complex", "bare")}


@pytest.fixture(scope="module")
def model(saved: dict[str, Path]) -> TensorFlowModel:
    return load_tensorflow(saved["toy"], "toy", "1", OPTIONS)


def expected_scores(rows: list[list[float]]) -> np.ndarray[Any, Any]:
    return np.asarray(rows, dtype=np.float32) @ WEIGHTS + BIAS


def b64(data: bytes) -> dict[str, str]:
    return {"b64": base64.b64encode(data).decode()}


def test_signature_is_the_serving_default_in_v2_terms(model: TensorFlowModel, saved: dict[str, Path]) -> None:
    assert (model.name, model.version, model.framework) == ("toy", "1", "tensorflow")
    assert model.loaded.path == saved["toy"] and model.loaded.warnings == []
    assert model.signature.inputs == (TensorSpec("x", "FP32", (-1, 4)),)
    assert model.signature.outputs == (TensorSpec("label", "INT64", (-1,)), TensorSpec("scores", "FP32", (-1, 3)))


def test_describe_lists_every_signature_as_json(model: TensorFlowModel) -> None:
    described = json.loads(json.dumps(model.describe()))
    assert described["tensorflow_version"] == tf.__version__
    assert described["default_signature"] == "serving_default"
    assert set(described["signatures"]) == {"serving_default", "mixed", "upper", "half"}
    mixed = described["signatures"]["mixed"]
    assert [(spec["name"], spec["datatype"]) for spec in mixed["inputs"]] == [
        ("a", "FP32"),
        ("count", "INT64"),
        ("text", "BYTES"),
    ]
    assert [spec["name"] for spec in mixed["outputs"]] == ["length", "text", "text_bytes", "total"]
    assert described["signatures"]["half"]["inputs"] == [
        {"name": "v", "datatype": "FP32", "shape": [-1], "parameters": {"rank": "any"}}
    ]


def test_row_format_answers_one_object_per_instance(model: TensorFlowModel) -> None:
    scores = expected_scores(ROWS)
    expected = [{"label": int(np.argmax(row)), "scores": row.tolist()} for row in scores]
    assert model.score({"instances": ROWS}).value == {"predictions": expected}
    named = model.score({"signature_name": "", "instances": [{"x": row} for row in ROWS]})
    assert named.value == {"predictions": expected}


def test_columnar_format_answers_an_object_of_outputs(model: TensorFlowModel) -> None:
    scores = expected_scores(ROWS)
    expected = {"outputs": {"label": np.argmax(scores, axis=1).tolist(), "scores": scores.tolist()}}
    assert model.score({"inputs": ROWS}).value == expected
    assert model.score({"inputs": {"x": ROWS}}).value == expected


def test_a_single_output_is_answered_without_its_name(model: TensorFlowModel) -> None:
    # TF Serving's own example: half_plus_three.
    assert model.score({"signature_name": "half", "instances": [1.0, 2.0, 5.0]}).value == {
        "predictions": [3.5, 4.0, 5.5]
    }
    assert model.score({"signature_name": "half", "inputs": 4.0}).value == {"outputs": 5.0}
    assert model.score({"signature_name": "half", "inputs": [[2.0], [4.0]]}).value == {"outputs": [[4.0], [5.0]]}


def test_named_inputs_strings_and_b64_both_ways(model: TensorFlowModel) -> None:
    binary = b"\xff\x00"
    instances = [{"a": 1.5, "count": 2, "text": "héllo"}, {"a": 0.0, "count": 1, "text": b64(binary)}]
    predictions = model.score({"signature_name": "mixed", "instances": instances}).value["predictions"]
    assert predictions == [
        # Text stays text, except in an output whose name ends in _bytes; bytes that are not UTF-8 go as b64.
        {"length": 6, "text": "héllo", "text_bytes": b64("héllo".encode()), "total": 3.5},
        {"length": 2, "text": b64(binary), "text_bytes": b64(binary), "total": 1.0},
    ]
    # A b64 object is a value, not an object of named inputs.
    upper = model.score({"signature_name": "upper", "instances": [b64(b"ab"), "cd"]}).value
    assert upper == {"predictions": ["AB", "CD"]}
    columns = {"a": [1.0, 2.0], "count": [0, 3], "text": ["x", "yz"]}
    outputs = model.score({"signature_name": "mixed", "inputs": columns}).value["outputs"]
    assert outputs == {
        "length": [1, 2],
        "text": ["x", "yz"],
        "text_bytes": [b64(b"x"), b64(b"yz")],
        "total": [1.0, 5.0],
    }


MIXED = {"signature_name": "mixed"}
ONE = {"a": [1.0], "count": [1], "text": ["t"]}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([ROWS[0]], 'must be an object with "instances" (row format) or "inputs"'),
        ({"data": ROWS}, 'must be an object with "instances" (row format) or "inputs"'),
        ({"instances": ROWS, "inputs": ROWS}, "(columnar), not both"),
        ({"signature_name": "nope", "instances": ROWS}, "Unknown signature_name 'nope': the model's signatures are "),
        ({"signature_name": 3, "instances": ROWS}, "Unknown signature_name 3"),
        ({"instances": []}, '"instances" must be a non-empty list'),
        ({"instances": {"x": ROWS}}, '"instances" must be a non-empty list'),
        (
            {"instances": [[1.0, 2.0, 3.0]]},
            "Input 'x' of signature 'serving_default' (instances, stacked) must have shape",
        ),
        ({"inputs": [1.0, 2.0, 3.0, 4.0]}, "must have shape [-1, 4] (-1: any size), not [4]"),
        ({"instances": [ROWS[0], [1.0, 2.0]]}, "Input 'x' of signature 'serving_default' is ragged"),
        ({"instances": [["a", "b", "c", "d"]]}, "Input 'x' of signature 'serving_default' must hold numbers (FP32)"),
        ({"instances": [[True, False, True, False]]}, "must hold numbers (FP32)"),
        ({"instances": [[1.0, None, 3.0, 4.0]]}, "must hold numbers (FP32)"),
        ({"inputs": {"x": ROWS, "extra": 1}}, '"inputs": unknown extra. The signature\'s inputs are x'),
        ({"instances": [{"x": ROWS[0]}, ROWS[1]]}, "must be all objects of named inputs, or all values"),
        ({"instances": [{"y": ROWS[0]}]}, "Instance 0: missing x; unknown y"),
        ({**MIXED, "instances": [1.0]}, "Signature 'mixed' takes a, count, text: each instance must be an object"),
        ({**MIXED, "inputs": [1.0]}, "Signature 'mixed' takes a, count, text: \"inputs\" must be an object"),
        ({**MIXED, "inputs": {**ONE, "count": [1.5]}}, "Input 'count' of signature 'mixed' must hold integers (INT64)"),
        ({**MIXED, "inputs": {**ONE, "count": [2**63]}}, "Input 'count' of signature 'mixed' has values outside"),
        ({**MIXED, "inputs": {**ONE, "text": [5]}}, "Input 'text' of signature 'mixed' must hold strings or {\"b64\""),
        ({**MIXED, "inputs": {**ONE, "text": [{"b64": "!!"}]}}, 'has a "b64" value that is not base64'),
        ({**MIXED, "inputs": {**ONE, "text": [["a"], ["b", "c"]]}}, "Input 'text' of signature 'mixed' is ragged"),
        (
            {**MIXED, "inputs": {**ONE, "text": [["a"]]}},
            "Input 'text' of signature 'mixed' (inputs) must have shape [-1]",
        ),
        # Past the signature's checks: the model's own op refuses (TensorFlow's InvalidArgumentError).
        (
            {**MIXED, "inputs": {**ONE, "a": [1.0, 2.0, 3.0], "count": [1, 2]}},
            "cannot take this input: Incompatible shapes",
        ),
    ],
)
def test_bad_requests_are_400s_naming_what_is_wrong(model: TensorFlowModel, body: Any, message: str) -> None:
    with pytest.raises(BadRequest) as caught:
        model.score(body)
    assert message in caught.value.message


def test_infer_takes_and_returns_numpy_tensors(model: TensorFlowModel) -> None:
    rows = np.asarray(ROWS, dtype=np.float32)
    results = model.infer({"x": rows}, None)
    assert set(results) == {"label", "scores"}
    assert results["scores"].dtype == np.float32 and results["label"].dtype == np.int64
    np.testing.assert_allclose(results["scores"], expected_scores(ROWS))
    assert list(model.infer({"x": rows}, ["label"])) == ["label"]


@pytest.mark.parametrize(
    ("inputs", "outputs", "message"),
    [
        ({"x": np.zeros((1, 4), np.float64)}, None, "Input 'x' must be FP32, not FP64"),
        ({"x": np.zeros((1, 5), np.float32)}, None, "Input 'x' must have shape [-1, 4]"),
        ({}, None, "The request's inputs: missing x"),
        ({"x": np.zeros((1, 4), np.float32), "y": np.zeros(1)}, None, "unknown y"),
        ({"x": np.zeros((1, 4), np.float32)}, ["nope"], "Unknown output(s) nope: the outputs are label, scores"),
    ],
)
def test_infer_refuses_what_the_signature_does_not_take(
    model: TensorFlowModel, inputs: dict[str, Any], outputs: list[str] | None, message: str
) -> None:
    with pytest.raises(BadRequest) as caught:
        model.infer(inputs, outputs)
    assert message in caught.value.message


def test_example_is_a_body_the_model_takes(model: TensorFlowModel) -> None:
    example = model.example()
    assert example == {"instances": [[0.0, 0.0, 0.0, 0.0]]}
    assert model.score(example).value == {"predictions": [{"label": 1, "scores": [0.0, 0.5, 0.0]}]}


def test_signatures_json_cannot_carry_are_left_out(saved: dict[str, Path]) -> None:
    model = load_tensorflow(saved["partial"], "partial", None, OPTIONS)
    assert model.describe()["signatures"].keys() == {"beta"}
    assert model.signature.inputs[0].name == "v"
    assert model.loaded.warnings == [
        "Signature 'alpha' is not served: tensor 'z' has dtype complex64, which JSON cannot carry",
        "No 'serving_default' signature: requests without one use 'beta'",
    ]
    assert model.score({"instances": [2.0]}).value == {"predictions": [4.0]}
    with pytest.raises(ModelLoadError, match=r"has no serving signature that can be served \(Signature 'serving_d"):
        load_tensorflow(saved["complex"], "complex", None, OPTIONS)


def test_folders_that_cannot_be_served_are_load_errors(saved: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match=f"{tmp_path} cannot be loaded as a TensorFlow SavedModel"):
        load_tensorflow(tmp_path, "empty", None, OPTIONS)
    with pytest.raises(ModelLoadError, match="has no serving signature that can be served: save it with"):
        load_tensorflow(saved["bare"], "bare", None, OPTIONS)


def test_without_tensorflow_the_error_says_what_to_install(
    saved: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "tensorflow", None)
    with pytest.raises(ModelLoadError, match=r"pip install 'scoring-runtime\[tensorflow\]'"):
        load_tensorflow(saved["toy"], "toy", None, OPTIONS)


def test_a_pinned_digest_is_checked(saved: dict[str, Path]) -> None:
    with pytest.raises(ModelRefused, match="SCORING_MODEL_SHA256"):
        load_tensorflow(saved["toy"], "toy", None, LoadOptions(sha256="0" * 64))
