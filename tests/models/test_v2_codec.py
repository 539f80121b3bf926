"""The Open Inference Protocol codec against Triton's own client (its request encoder and response decoder, no server)
and against the protocol's vendored REST specification."""

from __future__ import annotations

import importlib
import json
from typing import Any

import numpy as np
import orjson
import pytest

from scoring_runtime.errors import BadRequest
from scoring_runtime.models.tensors import Signature, TensorSpec
from scoring_runtime.models.v2_codec import (
    HEADER_LENGTH,
    InferRequest,
    decode_request,
    encode_error,
    encode_response,
    model_metadata,
    parse_header_length,
    server_metadata,
)
from tests.models import oip_spec

# tritonclient ships no type information.
triton: Any = importlib.import_module("tritonclient.http")

ARRAYS = {
    "FP32": np.array([[0.1, -2.5e-30, 3.4e38], [np.inf, np.nan, -0.0]], dtype=np.float32),
    "FP64": np.array([[[0.1], [np.pi]], [[-1e308], [5e-324]]]),
    "FP16": np.array([0.1, 65504.0, -6e-8], dtype=np.float16),
    "INT64": np.array([[-(2**63), 2**63 - 1]], dtype=np.int64),
    "INT32": np.array([-(2**31), 0, 2**31 - 1], dtype=np.int32),
    "INT8": np.array([-128, 127], dtype=np.int8),
    "UINT8": np.arange(256, dtype=np.uint8).reshape(16, 16),
    "UINT64": np.array([0, 2**64 - 1], dtype=np.uint64),
    "BOOL": np.array([[True, False, True]]),
}
TEXTS = np.array([["héllo", "数据"], ["", "🙂 emoji"]], dtype=object)


def triton_request(
    arrays: dict[str, tuple[np.ndarray[Any, Any], bool]], outputs: list[Any] | None = None, request_id: str = ""
) -> InferRequest:
    """What tritonclient sends for `arrays` (name: (array, as binary)), decoded by us."""
    inputs = []
    for name, (array, binary) in arrays.items():
        datatype = "BYTES" if array.dtype == object else triton.np_to_triton_dtype(array.dtype)
        tensor = triton.InferInput(name, list(array.shape), datatype)
        tensor.set_data_from_numpy(array, binary_data=binary)
        inputs.append(tensor)
    body, json_size = triton.InferenceServerClient.generate_request_body(inputs, outputs=outputs, request_id=request_id)
    if json_size is None:
        # The standard library reads the NaN and Infinity literals the client writes for such floats.
        oip_spec.validate("inference_request", json.loads(body))
    return decode_request(body, json_size)


def assert_same(actual: np.ndarray[Any, Any], expected: np.ndarray[Any, Any]) -> None:
    np.testing.assert_array_equal(actual, expected, strict=True)  # strict: the same shape and dtype too


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
@pytest.mark.parametrize("datatype", sorted(ARRAYS))
def test_triton_client_inputs_decode_exactly(datatype: str, binary: bool) -> None:
    request = triton_request({"x": (ARRAYS[datatype], binary)})
    assert request.input_datatypes == {"x": datatype}
    assert_same(request.inputs["x"], ARRAYS[datatype])
    # Without outputs named, the client asks for every output as binary data.
    assert request.output_names() is None and request.binary_data_output and request.binary_output("y")


def test_binary_inputs_are_read_only_views_of_the_body() -> None:
    tensor = triton.InferInput("x", [2, 3], "FP32")
    tensor.set_data_from_numpy(ARRAYS["FP32"])
    body, json_size = triton.InferenceServerClient.generate_request_body([tensor])
    decoded = decode_request(body, json_size).inputs["x"]
    assert np.shares_memory(decoded, np.frombuffer(body, dtype=np.uint8))
    assert not decoded.flags.writeable


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_bytes_inputs_are_utf8_bytes_in_an_object_array(binary: bool) -> None:
    decoded = triton_request({"s": (TEXTS, binary)}).inputs["s"]
    expected = np.array([[text.encode() for text in row] for row in TEXTS], dtype=object)
    assert decoded.dtype == object and decoded.tolist() == expected.tolist()


def test_mixed_inputs_keep_their_order_id_and_requested_outputs() -> None:
    arrays = {
        "a": (ARRAYS["FP64"], True),
        "b": (ARRAYS["INT32"], False),
        "c": (TEXTS, True),
        "d": (ARRAYS["BOOL"], True),
        "e": (np.zeros((0, 3), dtype=np.float32), True),
        "f": (np.array([b"\xff\x00", b"", b"\x80"], dtype=object), True),  # binary BYTES need not be text
    }
    outputs = [triton.InferRequestedOutput("p", binary_data=False), triton.InferRequestedOutput("q")]
    request = triton_request(arrays, outputs=outputs, request_id="req-7")
    assert list(request.inputs) == list(arrays) and request.id == "req-7"
    for name in ("a", "b", "d", "e"):
        assert_same(request.inputs[name], arrays[name][0])
    assert request.inputs["f"].tolist() == arrays["f"][0].tolist()
    assert request.output_names() == ["p", "q"]
    assert [output.binary for output in request.outputs] == [False, True]
    assert not request.binary_data_output and not request.binary_output("other")


def test_nested_json_data_is_row_major() -> None:
    body = {"inputs": [{"name": "x", "shape": [3, 2], "datatype": "INT16", "data": [[1, 2, 3], [4, 5, 6]]}]}
    oip_spec.validate("inference_request", body)
    assert_same(decode_request(orjson.dumps(body), None).inputs["x"], np.arange(1, 7, dtype=np.int16).reshape(3, 2))
    assert_same(decode_one(json_entry("INT32", [2, 0], [[], []])).inputs["x"], np.empty((2, 0), dtype=np.int32))


def decode_one(entry: dict[str, Any], binary: bytes = b"") -> InferRequest:
    header = orjson.dumps({"inputs": [entry]})
    return decode_request(header + binary, len(header) if binary else None)


def binary_entry(datatype: str, shape: list[int], size: int) -> dict[str, Any]:
    return {"name": "x", "datatype": datatype, "shape": shape, "parameters": {"binary_data_size": size}}


def json_entry(datatype: str, shape: Any, data: Any) -> dict[str, Any]:
    return {"name": "x", "datatype": datatype, "shape": shape, "data": data}


@pytest.mark.parametrize(
    ("entry", "binary", "words"),
    [
        ({"name": "x", "shape": [1], "data": [1]}, b"", "no datatype"),
        ({"name": "x", "datatype": "FP32", "data": [1]}, b"", "no shape"),
        ({"name": "x", "datatype": "FP32", "shape": [1]}, b"", "neither data"),
        (json_entry("BF16", [1], [1]), b"", "unknown datatype 'BF16'"),
        (json_entry("FP32", [2, -1], []), b"", "non-negative integers"),
        (json_entry("FP32", [True], [1]), b"", "non-negative integers"),
        (json_entry("FP32", [1] * 33, [1]), b"", "33 dimensions"),
        (json_entry("FP32", [2, 2], [1, 2, 3]), b"", "takes 4 elements, but data holds 3"),
        (json_entry("FP32", [2], [[1, 2], [3]]), b"", "cannot be read as FP32"),
        (json_entry("FP32", [1], ["one"]), b"", "cannot be read as FP32"),
        (json_entry("FP32", [1], 1.0), b"", "data must be an array"),
        (json_entry("INT32", [1], [1.5]), b"", "must be integers"),
        (json_entry("INT64", [1], ["7"]), b"", "must be integers"),
        (json_entry("UINT8", [2], [1, 256]), b"", "outside the range of UINT8"),
        (json_entry("UINT32", [1], [-1]), b"", "outside the range of UINT32"),
        (json_entry("INT64", [2], [-1, 2**63]), b"", "cannot be read as INT64"),
        (json_entry("UINT64", [2], [0.5, 2**64 - 1]), b"", "must be integers"),
        (json_entry("BOOL", [1], [1]), b"", "true or false"),
        (json_entry("BYTES", [1], [1]), b"", "must be strings"),
        ({**json_entry("FP32", [1], [1]), "parameters": []}, b"", "parameters must be"),
        (binary_entry("FP32", [2], 4), b"\0" * 4, "takes 8 bytes"),
        (binary_entry("FP32", [1], 8), b"\0" * 4, "only 4 bytes"),
        (binary_entry("FP32", [1], -4), b"\0" * 4, "non-negative integer"),
        (binary_entry("INT8", [1], 1), b"", f"the request has no {HEADER_LENGTH} header"),
        (binary_entry("BOOL", [2], 2), b"\x01\x02", "0 and 1"),
        (binary_entry("BYTES", [2], 6), b"\x02\0\0\0ab", "ends before element 1"),
        (binary_entry("BYTES", [1], 6), b"\x05\0\0\0ab", "declares 5 bytes"),
        (binary_entry("BYTES", [1], 7), b"\x02\0\0\0abc", "1 bytes beyond"),
        ({**binary_entry("FP32", [1], 4), "data": [1]}, b"\0" * 4, "both data and"),
    ],
)
def test_bad_inputs_are_named(entry: dict[str, Any], binary: bytes, words: str) -> None:
    with pytest.raises(BadRequest, match="'x'") as caught:
        decode_one(entry, binary)
    assert words in caught.value.message


@pytest.mark.parametrize(
    ("body", "header_length", "words"),
    [
        (b"{", None, "not valid JSON"),
        (b"", None, "not valid JSON"),
        (b"[1]", None, "must be a JSON object, got an array"),
        (b"{}", None, "has no inputs"),
        (b'{"inputs": {}}', None, "not an array"),
        (b'{"inputs": [], "id": 7}', None, "id must be a string"),
        (b'{"inputs": [7]}', None, "Input 0 must be a JSON object"),
        (b'{"inputs": [{"shape": [1]}]}', None, "Input 0 has no name"),
        (b'{"inputs": [], "parameters": {"binary_data_output": 1}}', None, "binary_data_output must be true or false"),
        (b'{"inputs": [], "outputs": [{"name": "y"}, {"name": "y"}]}', None, "'y' is requested more than once"),
        (b'{"inputs": [], "outputs": [{"name": "y", "parameters": {"binary_data": "yes"}}]}', None, "'y'"),
        (b'{"inputs": [], "outputs": [{}]}', None, "Requested output 0 has no name"),
        (b'{"inputs": []}', 15, "Inference-Header-Content-Length is 15, but the request body has 14 bytes"),
        (orjson.dumps({"inputs": [json_entry("INT8", [1], [1])] * 2}), None, "'x' is given more than once"),
        (b'{"inputs": []}\0\0', 14, "2 bytes of binary data after the inputs' binary_data_size (0 bytes)"),
    ],
)
def test_bad_requests_say_what_is_wrong(body: bytes, header_length: int | None, words: str) -> None:
    with pytest.raises(BadRequest) as caught:
        decode_request(body, header_length)
    assert words in caught.value.message


def test_header_length_values() -> None:
    assert parse_header_length(None) is None and parse_header_length(" 12 ") == 12
    for bad in ("-1", "1.0", "", "١٢"):
        with pytest.raises(BadRequest, match=HEADER_LENGTH):
            parse_header_length(bad)


def request_for(outputs: list[dict[str, Any]] | None = None, **document: Any) -> InferRequest:
    body = {"inputs": [], **({"outputs": outputs} if outputs is not None else {}), **document}
    return decode_request(orjson.dumps(body), None)


def client_reads(body: bytes, headers: dict[str, str]) -> Any:
    length = headers.get(HEADER_LENGTH)
    return triton.InferResult.from_response_body(body, header_length=None if length is None else int(length))


def test_json_outputs_read_back_exactly_and_match_the_spec() -> None:
    outputs = {name: array for name, array in ARRAYS.items() if name != "FP32"}  # JSON has no infinity
    outputs["texts"] = TEXTS
    outputs["utf8"] = np.array([b"caf\xc3\xa9"], dtype=object)
    outputs["fortran"] = np.asfortranarray(np.arange(6.0).reshape(2, 3))
    outputs["big_endian"] = np.array([1, 2], dtype=">i4")
    outputs["scalar"] = np.float64(2.5)
    request = request_for(id="r-1")
    body, headers = encode_response("m", "3", request, outputs, {"texts": {"note": "kept"}})
    assert headers == {"content-type": "application/json"}
    document = orjson.loads(body)
    oip_spec.validate("inference_response", document)
    assert list(document) == ["model_name", "model_version", "id", "outputs"]
    assert (document["model_name"], document["model_version"], document["id"]) == ("m", "3", "r-1")
    assert [output["name"] for output in document["outputs"]] == list(outputs)
    assert document["outputs"][list(outputs).index("texts")]["parameters"] == {"note": "kept"}
    result = client_reads(body, headers)
    for name, array in ARRAYS.items():
        if name != "FP32":
            assert_same(result.as_numpy(name), array)
    assert result.as_numpy("texts").tolist() == TEXTS.tolist()
    assert result.as_numpy("utf8").tolist() == ["café"]
    assert_same(result.as_numpy("fortran"), np.arange(6.0).reshape(2, 3))
    assert_same(result.as_numpy("big_endian"), np.array([1, 2], dtype=np.int32))
    assert_same(result.as_numpy("scalar"), np.array(2.5))


def test_binary_outputs_read_back_exactly() -> None:
    outputs = {**ARRAYS, "texts": TEXTS, "j": np.array([1, 2], dtype=np.int16), "t": np.arange(4.0).reshape(2, 2).T}
    asked = [{"name": name, "parameters": {"binary_data": True}} for name in [*ARRAYS, "texts", "t"]]
    body, headers = encode_response("m", None, request_for(asked + [{"name": "j"}]), outputs)
    assert headers["content-type"] == "application/octet-stream"
    header = orjson.loads(body[: int(headers[HEADER_LENGTH])])
    assert "model_version" not in header and "id" not in header
    assert [output.get("data") for output in header["outputs"]][-2] == [1, 2]
    result = client_reads(body, headers)
    for name, array in ARRAYS.items():
        assert_same(result.as_numpy(name), array)
    assert [[text.decode() for text in row] for row in result.as_numpy("texts").tolist()] == TEXTS.tolist()
    assert_same(result.as_numpy("t"), np.arange(4.0).reshape(2, 2).T)


def test_binary_data_output_covers_outputs_not_named() -> None:
    named = [{"name": "a", "parameters": {"binary_data": False}}]
    request = request_for(named, parameters={"binary_data_output": True})
    body, headers = encode_response("m", None, request, {"a": np.array([1.0]), "b": np.array([2.0])})
    header = orjson.loads(body[: int(headers[HEADER_LENGTH])])
    assert header["outputs"][0]["data"] == [1.0] and header["outputs"][1]["parameters"] == {"binary_data_size": 8}
    assert_same(client_reads(body, headers).as_numpy("b"), np.array([2.0]))


def test_bytes_that_are_not_utf8_go_binary() -> None:
    raw = np.array([b"\xff\xfe", b"ok"], dtype=object)
    body, headers = encode_response("m", None, request_for(), {"raw": raw, "n": np.array([1], dtype=np.uint8)})
    header = orjson.loads(body[: int(headers[HEADER_LENGTH])])
    assert "data" not in header["outputs"][0] and header["outputs"][1]["data"] == [1]
    assert client_reads(body, headers).as_numpy("raw").tolist() == raw.tolist()


def test_errors_and_metadata_match_the_spec() -> None:
    oip_spec.validate("inference_error_response", orjson.loads(encode_error("Input 'x' has no shape")))
    signature = Signature(
        inputs=(TensorSpec("input", "FP64", (-1, 4), {"feature_names": ["a", "b", "c", "d"]}),),
        outputs=(TensorSpec("predict", "INT64", (-1,)), TensorSpec("label", "BYTES", (-1,))),
    )
    metadata = model_metadata("iris", ["1"], "sklearn", signature, {"trained_with": "1.5"})
    oip_spec.validate("metadata_model_response", metadata)
    assert metadata["inputs"][0]["parameters"] == {"feature_names": ["a", "b", "c", "d"]}
    assert (metadata["versions"], metadata["platform"], metadata["parameters"]) == (
        ["1"],
        "sklearn",
        {"trained_with": "1.5"},
    )
    assert "versions" not in model_metadata("iris", [], "sklearn", signature)
    oip_spec.validate("metadata_server_response", server_metadata("scoring_runtime", "1.0", ["binary_tensor_data"]))


def test_the_spec_checks_are_real() -> None:
    with pytest.raises(Exception, match="'model_name' is a required property"):
        oip_spec.validate("inference_response", {"outputs": []})
    with pytest.raises(Exception, match="is not of type 'integer'"):
        oip_spec.validate("metadata_tensor", {"name": "x", "datatype": "FP32", "shape": [1.5]})
    routes = oip_spec.paths()
    assert routes["/v2/models/{model_name}/versions/{model_version}/infer"] == {"POST"}
    assert routes["/v2/health/live"] == {"GET"} and len(routes) == 6
