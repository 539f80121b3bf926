"""The Open Inference Protocol codec at its edges: outputs that are not arrays, numpy types the protocol has no
datatype for, numpy values in metadata documents, and documents JSON cannot carry. Each failure is a 500 whose cause is
logged, never a half-written body nor a recursion."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from scoring_runtime.config import load_settings
from scoring_runtime.contract.loading import load_script
from scoring_runtime.errors import InternalError
from scoring_runtime.models.script_model import ScriptModel
from scoring_runtime.models.tensors import Signature, TensorSpec
from scoring_runtime.models.v2_codec import HEADER_LENGTH, decode_request, encode_json, encode_response, model_metadata

REQUEST = decode_request(b'{"inputs": []}', None)


def test_an_output_that_is_not_an_array_is_a_logged_internal_error(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="azmlinfsrv"), pytest.raises(InternalError) as caught:
        encode_response("m", "1", REQUEST, {"good": np.ones(2), "rows": [[1.0, 2.0], [3.0]]})
    assert caught.value.status_code == 500
    assert "rows" not in caught.value.message  # the client is not told the model's internals
    (record,) = [record for record in caplog.records if "is not an array" in record.getMessage()]
    assert record.getMessage().startswith("Output 'rows' of the model is not an array (list): ")


def test_numpy_values_in_documents_are_written_as_json() -> None:
    labels = np.array(["setosa", "versicolor"], dtype=object)  # an object array: orjson hands it over
    transposed = np.arange(6, dtype=np.int64).reshape(2, 3).T  # not C-contiguous: likewise
    signature = Signature((TensorSpec("X", "FP32", (-1, 2)),), (TensorSpec("y", "BYTES", (-1,), {"labels": labels}),))
    document = model_metadata("iris", ["1"], "sklearn", signature, {"columns": transposed, "scale": np.float32(0.5)})
    written = orjson.loads(encode_json(document))
    assert written["outputs"] == [
        {"name": "y", "datatype": "BYTES", "shape": [-1], "parameters": {"labels": labels.tolist()}}
    ]
    assert written["parameters"] == {"columns": [[0, 3], [1, 4], [2, 5]], "scale": 0.5}


@pytest.mark.parametrize("value", [{1, 2}, np.array([1 + 2j]), np.complex64(1), np.longdouble(1.5), object()])
def test_a_document_json_cannot_carry_is_a_logged_internal_error(
    value: object, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="azmlinfsrv"), pytest.raises(InternalError):
        encode_json({"name": "m", "parameters": {"odd": value}})
    assert any("cannot be encoded as JSON" in record.getMessage() for record in caplog.records)
    # longdouble's tolist() is a longdouble again: the cause logged is the type, not the encoder's recursion.
    assert not any("recursion" in record.getMessage() for record in caplog.records)


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_longdouble_outputs_travel_as_fp64(binary: bool) -> None:
    request = decode_request(orjson.dumps({"inputs": [], "parameters": {"binary_data_output": binary}}), None)
    outputs = {
        "rows": np.array([[1.5, -2.25], [np.longdouble("1e400"), 0.1]], dtype=np.longdouble),
        "one": np.longdouble(0.5),
    }
    body, headers = encode_response("m", "1", request, outputs)
    header = body[: int(headers[HEADER_LENGTH])] if binary else body
    written = orjson.loads(header)["outputs"]
    assert [(output["datatype"], output["shape"]) for output in written] == [("FP64", [2, 2]), ("FP64", [])]
    if binary:
        values = np.frombuffer(body[len(header) :], dtype="<f8")
        assert values.tolist() == [1.5, -2.25, np.inf, 0.1, 0.5]
    else:
        assert [output["data"] for output in written] == [[1.5, -2.25, None, 0.1], [0.5]]  # beyond FP64: infinity


@pytest.mark.parametrize(
    "value",
    [np.array([1 + 2j]), np.complex64(1), np.array([[1j]], dtype=np.clongdouble), np.clongdouble(2)],
    ids=["complex128", "complex64 scalar", "clongdouble", "clongdouble scalar"],
)
@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_a_complex_output_is_a_logged_internal_error(
    value: Any, binary: bool, caplog: pytest.LogCaptureFixture
) -> None:
    request = decode_request(orjson.dumps({"inputs": [], "parameters": {"binary_data_output": binary}}), None)
    with caplog.at_level(logging.ERROR, logger="azmlinfsrv"), pytest.raises(InternalError) as caught:
        encode_response("m", "1", request, {"good": np.ones(2), "z": value})
    assert caught.value.status_code == 500 and "'z'" not in caught.value.message
    (record,) = [record for record in caplog.records if "no V2 datatype" in record.getMessage()]
    assert record.getMessage() == (
        f"Output 'z' of the model has no V2 datatype ({np.asarray(value).dtype}): the protocol has no complex numbers"
    )


SCRIPT = """\
import numpy as np


def init():
    pass


def run(data):
    return {"ok": [1.0], "odd": {"score": np.longdouble(1.5)}}
"""


def test_a_script_output_holding_a_longdouble_is_a_logged_internal_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    script = tmp_path / "odd.py"
    script.write_text(SCRIPT)
    settings, _ = load_settings({"entry_script": str(script)})
    model = ScriptModel(load_script(settings), "m", "1")
    # "odd" has no tensor form: its JSON text is sent, which the longdouble inside stops (it has no JSON number).
    with caplog.at_level(logging.ERROR, logger="azmlinfsrv"), pytest.raises(InternalError):
        model.infer({"data": np.array([b'"x"'], dtype=object)}, None)
    messages = [record.getMessage() for record in caplog.records]
    assert "run() returned a value that cannot be encoded as JSON (dict): " in "".join(messages)
    assert not any("recursion" in message for message in messages)
