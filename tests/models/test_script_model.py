"""A typed score.py served as an Open Inference Protocol model, in-process: its signature from the schema decorators,
its inputs decoded as a client sends them, its answers encoded as a client reads them, and the requests it refuses."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import orjson
import pytest

from scoring_runtime.config import load_settings
from scoring_runtime.contract.loading import load_script
from scoring_runtime.errors import BadRequest, NotFound
from scoring_runtime.models import v2_codec
from scoring_runtime.models.script_model import ScriptModel
from tests.helpers import SCRIPTS

# Every kind of input and output a typed script may have: float32 and int32 arrays, a list of strings, and results
# that have no tensor form (ragged lists, None, records, the request headers it was given).
TYPED = """\
import numpy as np
from inference_schema.parameter_types.numpy_parameter_type import NumpyParameterType
from inference_schema.parameter_types.standard_py_parameter_type import StandardPythonParameterType
from inference_schema.schema_decorators import input_schema, output_schema


def init():
    pass


@input_schema("scale", NumpyParameterType(np.array([[1.0, 2.0]], dtype=np.float32)))
@input_schema("counts", NumpyParameterType(np.array([1, 2], dtype=np.int32)))
@input_schema("words", StandardPythonParameterType(["a", "b"]))
@output_schema(NumpyParameterType(np.array([1.0], dtype=np.float32)))
def run(scale, counts, words, request_headers=None):
    return {
        "upper": [word.upper() for word in words],
        "scale_type": str(scale.dtype),
        "counts_type": str(counts.dtype),
        "ragged": [[1, 2], [3]],
        "nothing": None,
        "records": [{"a": 1, "b": "x"}],
        "headers": request_headers,
    }
"""


def model_of(script: Path, name: str = "m") -> ScriptModel:
    settings, _ = load_settings({"entry_script": str(script)})
    return ScriptModel(load_script(settings), name, "1")


@pytest.fixture
def typed(tmp_path: Path) -> ScriptModel:
    path = tmp_path / "typed_all.py"
    path.write_text(TYPED)
    return model_of(path)


def infer(model: ScriptModel, inputs: list[dict[str, Any]], outputs: list[str] | None = None) -> dict[str, Any]:
    """What a client reads back for a JSON request: the outputs by name."""
    document: dict[str, Any] = {"inputs": inputs}
    if outputs is not None:
        document["outputs"] = [{"name": name} for name in outputs]
    request = v2_codec.decode_request(orjson.dumps(document), None)
    answer = model.infer(request.inputs, request.output_names())
    body, headers = v2_codec.encode_response(model.name, model.version, request, answer)
    assert headers["content-type"] == "application/json"
    return {output["name"]: output for output in orjson.loads(body)["outputs"]}


TYPED_INPUTS = [
    {"name": "scale", "datatype": "FP32", "shape": [1, 2], "data": [0.5, 1.5]},
    {"name": "counts", "datatype": "INT32", "shape": [2], "data": [3, 4]},
    {"name": "words", "datatype": "BYTES", "shape": [2], "data": ["hi", "yo"]},
]


def test_float32_and_int32_schemas_are_fp32_and_int32_tensors(typed: ScriptModel) -> None:
    specs = {spec.name: spec for spec in typed.signature.inputs}
    assert (specs["scale"].datatype, specs["scale"].shape) == ("FP32", (-1, 2))
    assert (specs["counts"].datatype, specs["counts"].shape) == ("INT32", (-1,))
    assert (specs["words"].datatype, specs["words"].shape, dict(specs["words"].parameters)) == ("BYTES", (-1,), {})
    assert typed.signature.input("scale") == specs["scale"] and typed.signature.input("output") is None
    output = typed.signature.output("output")
    assert output is not None and (output.datatype, output.shape) == ("FP32", (-1,))
    assert typed.signature.output("nothing") is None
    assert typed.framework == "python"
    assert typed.describe()["parameters"] == ["scale", "counts", "words"]


def test_values_without_a_tensor_form_are_their_json_text(typed: ScriptModel) -> None:
    outputs = infer(typed, TYPED_INPUTS)
    assert outputs["upper"]["data"] == ["HI", "YO"]  # BYTES elements reach run() as text
    assert outputs["scale_type"]["data"] == ["float32"] and outputs["counts_type"]["data"] == ["int32"]
    for name, expected in [("ragged", [[1, 2], [3]]), ("nothing", None), ("records", [{"a": 1, "b": "x"}])]:
        output = outputs[name]
        assert (output["datatype"], output["shape"]) == ("BYTES", [1]), name
        assert orjson.loads(output["data"][0]) == expected, name
    assert orjson.loads(outputs["headers"]["data"][0]) == {}  # run() wants headers: it is given an empty dict


def test_the_outputs_asked_for_only_and_in_their_order(typed: ScriptModel) -> None:
    outputs = infer(typed, TYPED_INPUTS, ["records", "upper"])
    assert list(outputs) == ["records", "upper"]
    with pytest.raises(BadRequest, match=r"^Unknown output\(s\) missing, other: run\(\) returned upper, ") as caught:
        infer(typed, TYPED_INPUTS, ["upper", "missing", "other"])
    assert "records" in caught.value.message


def test_bytes_inputs_that_are_not_utf8_are_refused(typed: ScriptModel) -> None:
    element = b"\xff\xfe"
    blob = struct.pack("<I", len(element)) + element
    header = orjson.dumps(
        {
            "inputs": [
                *TYPED_INPUTS[:2],
                {"name": "words", "datatype": "BYTES", "shape": [1], "parameters": {"binary_data_size": len(blob)}},
            ]
        }
    )
    request = v2_codec.decode_request(header + blob, len(header))
    with pytest.raises(BadRequest, match="^A BYTES input element is not UTF-8 text$"):
        typed.infer(request.inputs, None)


def test_a_script_model_has_no_score_of_its_own(typed: ScriptModel) -> None:
    with pytest.raises(NotFound, match=r"/score is its run\(\)"):
        typed.score({"scale": [[1.0, 2.0]]})


def test_a_dataframe_input_is_json_text_and_its_answer_records() -> None:
    model = model_of(SCRIPTS / "typed_pandas.py")
    (spec,) = model.signature.inputs
    assert (spec.name, spec.datatype, spec.shape, dict(spec.parameters)) == (
        "frame",
        "BYTES",
        (1,),
        {"content_type": "json"},
    )
    rows = [{"a": 1.5, "b": 2, "name": "x"}, {"a": 0.5, "b": 1, "name": "y"}]
    text = orjson.dumps(rows).decode()
    outputs = infer(model, [{"name": "frame", "datatype": "BYTES", "shape": [1], "data": [text]}])
    (answer,) = outputs["output"]["data"]
    assert [row["total"] for row in orjson.loads(answer)] == [3.5, 1.5]
    assert [row["name"] for row in orjson.loads(answer)] == ["x", "y"]


@pytest.mark.parametrize(
    ("entry", "words"),
    [
        (
            {"name": "frame", "datatype": "BYTES", "shape": [2], "data": ["[]", "[]"]},
            "Input 'frame' takes one element: the value as JSON text",
        ),
        (
            {"name": "frame", "datatype": "BYTES", "shape": [1], "data": ["[{'a': 1}"]},
            "Input 'frame' is not JSON text: ",
        ),
        (  # a number where the JSON text should be
            {"name": "frame", "datatype": "INT64", "shape": [1], "data": [5]},
            "Input 'frame' is not JSON text: ",
        ),
    ],
)
def test_json_text_inputs_are_checked(entry: dict[str, Any], words: str) -> None:
    model = model_of(SCRIPTS / "typed_pandas.py")
    with pytest.raises(BadRequest) as caught:
        infer(model, [entry])
    assert caught.value.message.startswith(words)


def test_unknown_and_missing_inputs_are_named() -> None:
    model = model_of(SCRIPTS / "typed_num.py")
    num = {"name": "num", "datatype": "INT64", "shape": [], "data": [4]}
    with pytest.raises(BadRequest, match=r"^Unknown input\(s\) size: run\(\) takes num, color$"):
        infer(model, [num, {**num, "name": "size"}])
    with pytest.raises(BadRequest, match=r"^Missing input\(s\) num, which run\(\) requires$"):
        infer(model, [{"name": "color", "datatype": "BYTES", "shape": [1], "data": ['"blue"']}])
    outputs = infer(model, [num])
    assert outputs["double"]["data"] == [8] and outputs["color"]["data"] == ["red"]  # the default
