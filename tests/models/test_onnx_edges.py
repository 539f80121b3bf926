"""ONNX models at their edges: headers read from odd protobuf, files `onnx` cannot parse, graphs of unknown rank,
what a file says of itself, and a ZipMap's first answer being empty."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from skl2onnx import to_onnx  # type: ignore[import-untyped]
from sklearn.datasets import load_iris  # type: ignore[import-untyped]
from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]

from scoring_runtime.errors import BadRequest
from scoring_runtime.models.base import LoadOptions
from scoring_runtime.models.onnx_graph import ModelHeader, read_header, zipmap_labels
from scoring_runtime.models.onnx_model import OnnxModel, load_onnx


def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def field(number: int, wire: int, payload: bytes) -> bytes:
    return varint(number << 3 | wire) + payload


def text(number: int, value: bytes) -> bytes:
    return field(number, 2, varint(len(value)) + value)


def header_of(tmp_path: Path, data: bytes) -> ModelHeader:
    path = tmp_path / "model.onnx"
    path.write_bytes(data)
    return read_header(path)


def test_fixed_width_fields_are_skipped_and_long_varints_read(tmp_path: Path) -> None:
    opset = text(1, b"ai.onnx.ml") + field(2, 0, varint(300))  # 300 takes two bytes
    data = (
        field(1, 0, varint(9))
        + text(2, b"hand")
        + field(5, 1, b"\x00" * 8)  # a fixed64 field
        + field(6, 5, b"\x00" * 4)  # a fixed32 field
        + text(7, b"graph bytes, skipped unread")
        + text(8, opset)
        + text(3, b"0.1")
    )
    assert header_of(tmp_path, data) == ModelHeader(9, "hand", "0.1", {"ai.onnx.ml": 300})


@pytest.mark.parametrize(
    "data",
    [
        field(1, 0, varint(9)) + field(4, 3, b""),  # a group (wire type 3): not an ONNX file
        text(8, text(1, b"") + field(3, 0, varint(1))),  # an opset with a field it does not have
        text(8, field(2, 0, b"")),  # an opset whose version is cut short
        field(1, 0, b""),  # a file that ends after a field's tag
        field(2, 2, varint(10)) + b"abc",  # a name longer than the file
    ],
)
def test_a_file_not_in_onnx_form_has_an_empty_header(tmp_path: Path, data: bytes) -> None:
    assert header_of(tmp_path, data) == ModelHeader()


def test_labels_of_a_file_onnx_cannot_parse_are_left_to_the_first_answer(tmp_path: Path) -> None:
    path = tmp_path / "model.ort"
    path.write_bytes(b"ORTM" + b"\xff" * 64)
    assert zipmap_labels(path, ["output_probability"]) == {}


def _unknown_rank(path: Path) -> Path:
    graph = helper.make_graph(
        [helper.make_node("Identity", ["n"], ["m"])],
        "unknown_rank",
        [helper.make_tensor_value_info("n", TensorProto.FLOAT, None)],
        [helper.make_tensor_value_info("m", TensorProto.FLOAT, None)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)
    model.doc_string = "Echoes its input."
    helper.set_model_props(model, {"owner": "data-science", "trained": "2024-05-01"})
    onnx.save(model, path)
    return path


def load(path: Path) -> OnnxModel:
    return load_onnx(path, "m", "1", LoadOptions())


def test_an_input_of_unknown_rank_has_no_example_and_the_file_describes_itself(tmp_path: Path) -> None:
    model = load(_unknown_rank(tmp_path / "echo.onnx"))
    assert model.signature.inputs[0].shape == ()
    assert model.example() is None
    description = model.describe()
    assert description["description"] == "Echoes its input."
    assert description["metadata"] == {"owner": "data-science", "trained": "2024-05-01"}
    answer = model.infer({"n": np.array([[1.0, 2.0]], dtype=np.float32)}, None)
    np.testing.assert_array_equal(answer["m"], [[1.0, 2.0]])


def test_an_empty_first_zipmap_answer_then_the_labels_from_the_next(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    x, y = load_iris(return_X_y=True)
    x32 = x.astype(np.float32)
    path = tmp_path / "zipmap.onnx"
    path.write_bytes(to_onnx(LogisticRegression(max_iter=500).fit(x32, y), x32[:1]).SerializeToString())
    monkeypatch.setitem(sys.modules, "onnx", None)  # the labels are not read from the file
    model = load(path)
    empty = model.infer({"X": x32[:0]}, ["output_probability"])["output_probability"]
    assert empty.shape == (0, 0) and empty.dtype == np.float32
    assert "labels" not in model.describe()  # not learnt from an empty answer
    rows = model.infer({"X": x32[:2]}, ["output_probability"])["output_probability"]
    assert rows.shape == (2, 3)
    np.testing.assert_allclose(rows.sum(axis=1), 1.0, rtol=1e-5)
    assert dict(model.score({"data": x32[:1].tolist()}).headers) == {"x-ms-model-classes": "[0,1,2]"}


class _Raising:
    """A session whose run raises what onnxruntime 1.23 raises when a node fails, or another runtime error."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def run(self, *args: Any) -> Any:
        raise self.error


def test_a_node_failing_on_the_input_is_the_clients_and_other_runtime_errors_the_servers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from onnxruntime.capi.onnxruntime_pybind11_state import RuntimeException  # type: ignore[import-untyped]

    model = load(_unknown_rank(tmp_path / "echo.onnx"))
    feed = {"n": np.array([[1.0]], dtype=np.float32)}
    # onnxruntime 1.23's wording of Add refusing batch sizes that do not broadcast (1.32 raises Fail instead).
    node = RuntimeException(
        "[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : Non-zero status code returned while running Add node. Name:'' "
        "Status Message: Attempting to broadcast an axis by a dimension other than 1. 2 by 3"
    )
    monkeypatch.setattr(model, "_session", _Raising(node))
    with pytest.raises(BadRequest, match="The model cannot take this input: .*2 by 3"):
        model.infer(feed, None)
    other = RuntimeException("[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : Exception during initialization")
    monkeypatch.setattr(model, "_session", _Raising(other))
    with pytest.raises(RuntimeException, match="during initialization"):
        model.infer(feed, None)
