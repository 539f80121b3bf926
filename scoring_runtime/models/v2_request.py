"""Open Inference Protocol (KServe V2) inference requests: the REST body into numpy arrays and the outputs asked for.

JSON is parsed once, with orjson (the standard library only looks at what orjson refuses, such as NaN literals).
Numeric tensors become arrays in one numpy call: binary data as views of the request body, JSON data through
np.asarray.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from scoring_runtime.contract.payload import parse_json
from scoring_runtime.errors import BadRequest
from scoring_runtime.models.tensors import DATATYPES
from scoring_runtime.models.v2_binary import tensor_from_binary
from scoring_runtime.models.v2_elements import tensor_from_json

HEADER_LENGTH = "Inference-Header-Content-Length"
# numpy 1's limit (numpy 2 holds 64): more dimensions than any model takes.
_MAX_DIMS = 32
_NOT_JSON = "The inference request is not valid JSON"


@dataclass(frozen=True)
class RequestedOutput:
    """An output the request names, and whether it asked for it as binary data."""

    name: str
    binary: bool
    parameters: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class InferRequest:
    """A decoded inference request (compared by identity: its inputs are arrays). Binary inputs are read-only views
    of the request body, which they keep alive."""

    id: str | None
    parameters: dict[str, Any]
    inputs: dict[str, np.ndarray[Any, Any]]
    input_datatypes: dict[str, str]
    outputs: tuple[RequestedOutput, ...] = ()
    # The request's `binary_data_output` parameter: binary data for every output it does not name.
    binary_data_output: bool = False
    input_parameters: dict[str, dict[str, Any]] = field(default_factory=dict)

    def output_names(self) -> list[str] | None:
        """The outputs asked for, in request order; None when the request names none (the model's defaults)."""
        return [output.name for output in self.outputs] or None

    def binary_output(self, name: str) -> bool:
        """Whether output `name` was asked for as binary data."""
        for output in self.outputs:
            if output.name == name:
                return output.binary
        return self.binary_data_output


def parse_header_length(value: str | None) -> int | None:
    """The `Inference-Header-Content-Length` header's value as a length, None without the header."""
    if value is None:
        return None
    text = value.strip()
    if not (text.isascii() and text.isdigit()):
        raise BadRequest(f"{HEADER_LENGTH} must be a non-negative integer, got {value[:40]!r}")
    return int(text)


def decode_request(body: bytes, header_length: int | None) -> InferRequest:
    """An inference request body: all JSON, or (with `header_length`) a JSON header followed by binary tensor data."""
    view = memoryview(body)
    if header_length is None:
        header, binary = view, view[len(view) :]
    elif 0 <= header_length <= len(view):
        header, binary = view[:header_length], view[header_length:]
    else:
        raise BadRequest(f"{HEADER_LENGTH} is {header_length}, but the request body has {len(view)} bytes")
    document = _parse_json(header)
    if not isinstance(document, dict):
        raise BadRequest(f"The inference request must be a JSON object, got {_json_type(document)}")
    request_id = document.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise BadRequest(f"The inference request's id must be a string, got {_json_type(request_id)}")
    parameters = _parameters(document, "The inference request")
    binary_data_output = _flag(parameters, "binary_data_output", "The inference request")
    entries = document.get("inputs")
    if not isinstance(entries, list):
        problem = "has no inputs" if entries is None else f"has inputs that are {_json_type(entries)}, not an array"
        raise BadRequest(f"The inference request {problem}")

    inputs: dict[str, np.ndarray[Any, Any]] = {}
    datatypes: dict[str, str] = {}
    input_parameters: dict[str, dict[str, Any]] = {}
    offset = 0
    for index, entry in enumerate(entries):
        name, datatype, shape, entry_parameters = _input_fields(index, entry)
        if name in inputs:
            raise BadRequest(f"Input {name!r} is given more than once")
        count = math.prod(shape)
        size = entry_parameters.get("binary_data_size")
        if size is None:
            if "data" not in entry:
                raise BadRequest(f"Input {name!r} has neither data nor parameters.binary_data_size")
            array = tensor_from_json(name, datatype, shape, count, entry["data"])
        else:
            if type(size) is not int or size < 0:
                raise BadRequest(f"Input {name!r}: binary_data_size must be a non-negative integer, got {_brief(size)}")
            if "data" in entry:
                raise BadRequest(f"Input {name!r} has both data and parameters.binary_data_size")
            if offset + size > len(binary):
                where = f"only {len(binary) - offset} bytes of binary data remain"
                if header_length is None:
                    where = f"the request has no {HEADER_LENGTH} header, so no binary data"
                raise BadRequest(f"Input {name!r}: binary_data_size is {size}, but {where}")
            array = tensor_from_binary(name, datatype, shape, count, binary[offset : offset + size])
            offset += size
        inputs[name] = array
        datatypes[name] = datatype
        input_parameters[name] = entry_parameters
    if offset != len(binary):
        raise BadRequest(
            f"The request body has {len(binary) - offset} bytes of binary data after the inputs' binary_data_size "
            f"({offset} bytes) have been read"
        )
    return InferRequest(
        id=request_id,
        parameters=parameters,
        inputs=inputs,
        input_datatypes=datatypes,
        outputs=_requested_outputs(document.get("outputs"), binary_data_output),
        binary_data_output=binary_data_output,
        input_parameters=input_parameters,
    )


def _parse_json(header: memoryview) -> Any:
    # orjson refuses what the standard library reads (NaN and Infinity literals, which Triton's client writes for
    # JSON float data, byte-order marks, UTF-16 and UTF-32): parse_json tries both.
    return parse_json(header, problem=_NOT_JSON)


def _input_fields(index: int, entry: Any) -> tuple[str, str, list[int], dict[str, Any]]:
    if not isinstance(entry, dict):
        raise BadRequest(f"Input {index} must be a JSON object, got {_json_type(entry)}")
    name = entry.get("name")
    if not isinstance(name, str):
        raise BadRequest(f"Input {index} has no name" if name is None else f"Input {index}: name must be a string")
    datatype = entry.get("datatype")
    if datatype is None:
        raise BadRequest(f"Input {name!r} has no datatype")
    if datatype not in DATATYPES:
        raise BadRequest(f"Input {name!r}: unknown datatype {_brief(datatype)}; one of {', '.join(sorted(DATATYPES))}")
    shape = entry.get("shape")
    if shape is None:
        raise BadRequest(f"Input {name!r} has no shape")
    # type() rather than isinstance: true and false are not dimensions.
    if not isinstance(shape, list) or not all(type(dim) is int and dim >= 0 for dim in shape):
        raise BadRequest(f"Input {name!r}: shape must be an array of non-negative integers, got {_brief(shape)}")
    if len(shape) > _MAX_DIMS:
        raise BadRequest(f"Input {name!r}: shape has {len(shape)} dimensions, more than the {_MAX_DIMS} numpy takes")
    return name, datatype, shape, _parameters(entry, f"Input {name!r}")


def _requested_outputs(entries: Any, binary_data_output: bool) -> tuple[RequestedOutput, ...]:
    if entries is None:
        return ()
    if not isinstance(entries, list):
        raise BadRequest(f"The inference request's outputs must be an array, got {_json_type(entries)}")
    outputs: dict[str, RequestedOutput] = {}
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise BadRequest(f"Requested output {index} must be a JSON object, got {_json_type(entry)}")
        name = entry.get("name")
        if not isinstance(name, str):
            raise BadRequest(
                f"Requested output {index} has no name"
                if name is None
                else f"Requested output {index}: name must be a string"
            )
        if name in outputs:
            raise BadRequest(f"Output {name!r} is requested more than once")
        where = f"Requested output {name!r}"
        parameters = _parameters(entry, where)
        binary = _flag(parameters, "binary_data", where) if "binary_data" in parameters else binary_data_output
        outputs[name] = RequestedOutput(name, binary, parameters)
    return tuple(outputs.values())


def _parameters(entry: dict[str, Any], where: str) -> dict[str, Any]:
    parameters = entry.get("parameters")
    if parameters is None:
        return {}
    if not isinstance(parameters, dict):
        raise BadRequest(f"{where}: parameters must be a JSON object, got {_json_type(parameters)}")
    return parameters


def _flag(parameters: dict[str, Any], key: str, where: str) -> bool:
    value = parameters.get(key, False)
    if not isinstance(value, bool):
        raise BadRequest(f"{where}: parameters.{key} must be true or false, got {_brief(value)}")
    return value


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")


def _brief(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
