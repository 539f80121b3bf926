"""The Open Inference Protocol codec at its edges: outputs that are not arrays, numpy values in metadata documents,
and documents JSON cannot carry. Each is a 500 whose cause is logged, never a half-written body."""

from __future__ import annotations

import logging

import numpy as np
import orjson
import pytest

from scoring_runtime.errors import InternalError
from scoring_runtime.models.tensors import Signature, TensorSpec
from scoring_runtime.models.v2_codec import decode_request, encode_json, encode_response, model_metadata

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
