"""ONNX models served without a script: their signature from the graph, /score, V2 inference, ZipMap classifiers."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from skl2onnx import to_onnx  # type: ignore[import-untyped]
from sklearn.datasets import load_iris  # type: ignore[import-untyped]
from sklearn.linear_model import LinearRegression, LogisticRegression  # type: ignore[import-untyped]

from scoring_runtime.errors import BadRequest, ModelLoadError, ModelRefused
from scoring_runtime.models.base import LoadOptions
from scoring_runtime.models.onnx_graph import ModelHeader, read_header
from scoring_runtime.models.onnx_model import OnnxModel, load_onnx
from scoring_runtime.models.tensors import TensorSpec

X, Y = load_iris(return_X_y=True)
X32 = X.astype(np.float32)
SPECIES = np.array(["setosa", "versicolor", "virginica"])


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("onnx")
    classifier = LogisticRegression(max_iter=500).fit(X32, Y)
    built = {
        "zipmap": to_onnx(classifier, X32[:1]),
        "dense": to_onnx(classifier, X32[:1], options={"zipmap": False}),
        "strings": to_onnx(LogisticRegression(max_iter=500).fit(X32, SPECIES[Y]), X32[:1]),
        "regressor": to_onnx(LinearRegression().fit(X32, X32[:, 0]), X32[:1]),
        "two": _two_inputs(),
    }
    paths = {}
    for name, model in built.items():
        paths[name] = folder / f"{name}.onnx"
        paths[name].write_bytes(model.SerializeToString())
    return paths


def _two_inputs() -> onnx.ModelProto:
    """sum = a + b over a symbolic batch, and a string input answered as it came."""
    nodes = [helper.make_node("Add", ["a", "b"], ["sum"]), helper.make_node("Identity", ["words"], ["echo"])]
    graph = helper.make_graph(
        nodes,
        "two",
        [
            helper.make_tensor_value_info("a", TensorProto.FLOAT, ["batch", 3]),
            helper.make_tensor_value_info("b", TensorProto.FLOAT, ["batch", 3]),
            helper.make_tensor_value_info("words", TensorProto.STRING, [None]),
        ],
        [
            helper.make_tensor_value_info("sum", TensorProto.FLOAT, ["batch", 3]),
            helper.make_tensor_value_info("echo", TensorProto.STRING, [None]),
        ],
    )
    opsets = [helper.make_opsetid("", 17)]
    return helper.make_model(graph, opset_imports=opsets, producer_name="hand", producer_version="1.2", ir_version=9)


def _identity(folder: Path, element_type: int, shape: list[int]) -> Path:
    """m = n, of one element type."""
    graph = helper.make_graph(
        [helper.make_node("Identity", ["n"], ["m"])],
        "identity",
        [helper.make_tensor_value_info("n", element_type, shape)],
        [helper.make_tensor_value_info("m", element_type, shape)],
    )
    path = folder / "identity.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9), path)
    return path


def load(path: Path, **options: Any) -> OnnxModel:
    return load_onnx(path, "m", "1", LoadOptions(**options))


def test_signature_of_a_zipmap_classifier_is_dense_with_its_labels(models: dict[str, Path]) -> None:
    model = load(models["zipmap"])
    assert model.framework == "onnx"
    assert model.signature.inputs == (TensorSpec("X", "FP32", (-1, 4)),)
    label, probabilities = model.signature.outputs
    assert label == TensorSpec("output_label", "INT64", (-1,))
    assert probabilities == TensorSpec("output_probability", "FP32", (-1, 3))
    assert probabilities.parameters == {"labels": [0, 1, 2]}


def test_signature_of_a_hand_built_graph(models: dict[str, Path]) -> None:
    model = load(models["two"])
    assert [(spec.name, spec.datatype, spec.shape) for spec in model.signature.inputs] == [
        ("a", "FP32", (-1, 3)),
        ("b", "FP32", (-1, 3)),
        ("words", "BYTES", (-1,)),
    ]
    assert [(spec.name, spec.datatype, spec.shape) for spec in model.signature.outputs] == [
        ("sum", "FP32", (-1, 3)),
        ("echo", "BYTES", (-1,)),
    ]


def test_load_checks_the_pinned_digest(models: dict[str, Path]) -> None:
    path = models["regressor"]
    load(path, sha256=hashlib.sha256(path.read_bytes()).hexdigest())
    with pytest.raises(ModelRefused, match="does not have the digest"):
        load(path, sha256="ab" * 32)


def test_score_zipmap_answers_dense_probabilities_and_the_classes_header(models: dict[str, Path]) -> None:
    classifier = LogisticRegression(max_iter=500).fit(X32, Y)
    model = load(models["zipmap"])
    scored = model.score({"data": X32[:3].tolist()})
    assert scored.value["output_label"] == classifier.predict(X32[:3]).tolist()
    np.testing.assert_allclose(scored.value["output_probability"], classifier.predict_proba(X32[:3]), rtol=1e-4)
    assert dict(scored.headers) == {"x-ms-model-classes": "[0,1,2]"}
    inferred = model.infer({"X": X32[:3]}, ["output_probability"])["output_probability"]
    assert inferred.dtype == np.float32
    np.testing.assert_allclose(inferred, scored.value["output_probability"])


def test_string_labels_in_order(models: dict[str, Path]) -> None:
    model = load(models["strings"])
    scored = model.score({"X": X32[[0, 100]].tolist()})
    assert scored.value["output_label"] == ["setosa", "virginica"]
    assert json.loads(dict(scored.headers)["x-ms-model-classes"]) == ["setosa", "versicolor", "virginica"]
    assert np.argmax(scored.value["output_probability"], axis=1).tolist() == [0, 2]
    assert model.describe()["labels"] == {"output_probability": ["setosa", "versicolor", "virginica"]}


def test_labels_learnt_from_the_first_answer_without_onnx(
    models: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "onnx", None)
    model = load(models["strings"])
    assert model.signature.output("output_probability") == TensorSpec("output_probability", "FP32", (-1, -1))
    scored = model.score({"data": X32[:1].tolist()})
    assert json.loads(dict(scored.headers)["x-ms-model-classes"]) == ["setosa", "versicolor", "virginica"]
    assert len(scored.value["output_probability"][0]) == 3


def test_without_zipmap_there_is_no_classes_header(models: dict[str, Path]) -> None:
    scored = load(models["dense"]).score({"data": X32[:2].tolist()})
    assert set(scored.value) == {"label", "probabilities"}
    assert scored.headers == ()


def test_score_by_input_name(models: dict[str, Path]) -> None:
    scored = load(models["two"]).score({"a": [[1, 2, 3]], "b": [[0.5, 0.5, 0.5]], "words": ["héllo"]})
    assert scored.value == {"sum": [[1.5, 2.5, 3.5]], "echo": ["héllo"]}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([[1, 2, 3, 4]], "must be a JSON object"),
        ({"a": [[1, 2, 3]], "b": [[1, 2, 3]]}, "missing inputs: 'words'"),
        ({"a": [[1, 2, 3]], "b": [[1, 2, 3]], "words": ["x"], "c": 1}, "unknown inputs: 'c'"),
        ({"data": [[1, 2, 3]]}, "missing inputs: 'a', 'b', 'words'"),
        ({"a": [[1, 2, 3]], "b": [[1, 2]], "words": ["x"]}, "Input 'b' has shape [1, 2]; the model takes [-1, 3]"),
        ({"a": [1, 2, 3], "b": [[1, 2, 3]], "words": ["x"]}, "Input 'a' has shape [3]"),
        ({"a": [[1, 2, 3], [1, 2]], "b": [[1, 2, 3]], "words": ["x"]}, "Input 'a' is not a rectangular array"),
        ({"a": [[1, "x", 3]], "b": [[1, 2, 3]], "words": ["x"]}, "Input 'a' takes numbers"),
        ({"a": [[1, None, 3]], "b": [[1, 2, 3]], "words": ["x"]}, "Input 'a' takes numbers"),
        ({"a": [[1, 2, 1e300]], "b": [[1, 2, 3]], "words": ["x"]}, "Input 'a' holds values too large for FP32"),
        ({"a": [[1, 2, 3]], "b": [[1, 2, 3]], "words": [1]}, "Input 'words' takes strings"),
        # Batch sizes differ: only the graph's Add can tell, and onnxruntime's error is the client's.
        ({"a": [[1, 2, 3]] * 2, "b": [[1, 2, 3]] * 3, "words": ["x"]}, "The model cannot take this input"),
    ],
)
def test_bad_score_bodies_are_bad_requests(models: dict[str, Path], body: Any, message: str) -> None:
    with pytest.raises(BadRequest) as raised:
        load(models["two"]).score(body)
    assert message in raised.value.message


def test_integer_inputs_take_integral_json_numbers_in_range(tmp_path: Path) -> None:
    model = load(_identity(tmp_path, TensorProto.INT32, [2]))
    assert model.score({"data": [1.0, -2]}).value == {"m": [1, -2]}
    for value, message in [([1.5, 2], "holds fractions"), ([2**40, 1], "outside INT32's range"), ([1], "shape [1]")]:
        with pytest.raises(BadRequest, match=message.replace("[", r"\[")):
            model.score({"data": value})


def test_infer_casts_same_kind_and_selects_outputs(models: dict[str, Path]) -> None:
    model = load(models["two"])
    inputs = {
        "a": np.array([[1, 2, 3]], dtype=np.float64),
        "b": np.array([[1, 1, 1]], dtype=np.int64),
        "words": np.array([b"caf\xc3\xa9"], dtype=object),
    }
    both = model.infer(inputs, None)
    assert both["sum"].dtype == np.float32
    assert both["sum"].tolist() == [[2, 3, 4]]
    assert both["echo"].tolist() == ["café"]
    assert list(model.infer(inputs, ["echo"])) == ["echo"]


@pytest.mark.parametrize(
    ("inputs", "outputs", "message"),
    [
        ({"a": np.array([[1.5, 2, 3]])}, None, "missing inputs: 'b', 'words'"),
        ({"b": np.array([[b"x"] * 3], dtype=object)}, None, "Input 'b' was sent as BYTES; the model takes FP32"),
        ({"words": np.array([1.0])}, None, "Input 'words' was sent as FP64; the model takes BYTES"),
        ({"words": np.array([b"\xff"], dtype=object)}, None, "not UTF-8"),
        ({"a": np.ones((1, 4))}, None, "Input 'a' has shape [1, 4]"),
        ({}, ["nope"], "Unknown outputs: 'nope'. The model has 'sum', 'echo'"),
    ],
)
def test_bad_infer_requests(models: dict[str, Path], inputs: dict[str, Any], outputs: Any, message: str) -> None:
    good = {"a": np.ones((1, 3)), "b": np.ones((1, 3)), "words": np.array([b"x"], dtype=object)}
    sent = inputs if message.startswith("missing") else {**good, **inputs}
    with pytest.raises(BadRequest) as raised:
        load(models["two"]).infer(sent, outputs)
    assert message in raised.value.message


def test_infer_refuses_a_float_for_an_integer_input(tmp_path: Path) -> None:
    model = load(_identity(tmp_path, TensorProto.INT32, [2]))
    assert model.infer({"n": np.array([1, 2], dtype=np.int64)}, None)["m"].dtype == np.int32
    # Not the same kind: a fraction would be lost.
    with pytest.raises(BadRequest, match="Input 'n' was sent as FP64; the model takes INT32"):
        model.infer({"n": np.array([1.0, 2.0])}, None)
    with pytest.raises(BadRequest, match="outside INT32's range"):
        model.infer({"n": np.array([2**40, 1])}, None)


def test_example_and_describe(models: dict[str, Path]) -> None:
    single = load(models["zipmap"])
    assert single.example() == {"data": [[0.0, 0.0, 0.0, 0.0]]}
    two = load(models["two"])
    assert two.example() == {"a": [[0.0] * 3], "b": [[0.0] * 3], "words": [""]}
    description = json.loads(json.dumps(two.describe()))
    assert description["producer"] == {"name": "hand", "version": "1.2"}
    assert description["opsets"] == {"": 17}
    assert description["ir_version"] == 9
    assert [tensor["name"] for tensor in description["inputs"]] == ["a", "b", "words"]
    assert "labels" not in description
    zipmap = single.describe()
    assert zipmap["producer"]["name"] == "skl2onnx"
    assert zipmap["opsets"]["ai.onnx.ml"] >= 1
    assert zipmap["labels"] == {"output_probability": [0, 1, 2]}


def test_header_of_a_file_that_is_not_protobuf(tmp_path: Path) -> None:
    path = tmp_path / "x.onnx"
    path.write_bytes(b"\xff" * 20)
    assert read_header(path) == ModelHeader()


def test_an_invalid_file_is_a_load_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "broken.onnx"
    path.write_bytes(b"not a model")
    with pytest.raises(ModelLoadError, match=r"broken\.onnx is not an ONNX model onnxruntime can load: .*Protobuf"):
        load(path)


def test_without_onnxruntime_the_error_names_the_extra(
    models: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(ModelLoadError, match=r"pip install 'scoring-runtime\[onnx\]'"):
        load(models["regressor"])


def test_unsupported_element_types_are_refused_at_load(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match=r"input 'n' is of type tensor\(bfloat16\)"):
        load(_identity(tmp_path, TensorProto.BFLOAT16, [2]))


def test_regressor_and_thread_setting(models: dict[str, Path]) -> None:
    regression = LinearRegression().fit(X32, X32[:, 0])
    model = load_onnx(models["regressor"], "r", None, LoadOptions(threads=1))
    assert model._session.get_session_options().intra_op_num_threads == 1
    answer = model.score({"data": X32[:2].tolist()}).value
    np.testing.assert_allclose(np.ravel(answer["variable"]), regression.predict(X32[:2]), rtol=1e-4)
