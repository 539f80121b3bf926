"""The Open Inference Protocol (KServe V2) REST codec: requests decoded (v2_request.py), responses, errors and the
metadata documents encoded.

Responses are written by orjson straight from the output arrays. An output asked for as binary data (Triton's and
KServe's binary tensor data extension, v2_binary.py) goes after the JSON header as raw bytes; so does a BYTES output
holding bytes that are not UTF-8, which JSON cannot carry (the protocol has no base64 form).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import orjson

from scoring_runtime.errors import InternalError
from scoring_runtime.models.tensors import Signature, datatype_of
from scoring_runtime.models.v2_binary import binary_bytes, binary_numbers
from scoring_runtime.models.v2_elements import output_bytes, output_texts
from scoring_runtime.models.v2_request import (
    HEADER_LENGTH,
    InferRequest,
    RequestedOutput,
    decode_request,
    parse_header_length,
)

__all__ = [
    "HEADER_LENGTH",
    "JSON_TYPE",
    "OCTET_STREAM",
    "InferRequest",
    "RequestedOutput",
    "decode_request",
    "encode_error",
    "encode_json",
    "encode_response",
    "model_metadata",
    "parse_header_length",
    "server_metadata",
]

logger = logging.getLogger("azmlinfsrv")

JSON_TYPE = "application/json"
OCTET_STREAM = "application/octet-stream"
# Without OPT_NON_STR_KEYS: V2 documents have string keys only, and a stray one is a bug to see, not to paper over.
_OPTIONS = orjson.OPT_SERIALIZE_NUMPY


def encode_response(
    model_name: str,
    model_version: str | None,
    request: InferRequest,
    outputs: Mapping[str, Any],
    output_parameters: Mapping[str, Mapping[str, Any]] | None = None,
) -> tuple[bytes, dict[str, str]]:
    """The `$inference_response` for `outputs` (arrays by name, in the order given) and the headers to send with it:
    `content-type`, and `Inference-Header-Content-Length` when binary data follow the JSON."""
    entries: list[dict[str, Any]] = []
    blobs: list[memoryview] = []
    for name, value in outputs.items():
        array = _output_array(name, value)
        datatype = datatype_of(array.dtype)
        entry: dict[str, Any] = {"name": name, "datatype": datatype, "shape": list(array.shape)}
        parameters = dict(output_parameters.get(name, {})) if output_parameters else {}
        binary = request.binary_output(name)
        data: Any = None
        blob: memoryview | None = None
        if datatype == "BYTES":
            data = None if binary else output_texts(array)
            if data is None:
                blob = memoryview(binary_bytes(output_bytes(array)))
        elif binary:
            blob = binary_numbers(array)
        else:
            # ravel() is C-ordered and contiguous, as orjson needs to write an array itself.
            data = array.ravel()
        if blob is not None:
            parameters["binary_data_size"] = blob.nbytes
            blobs.append(blob)
        if parameters:
            entry["parameters"] = parameters
        if blob is None:
            entry["data"] = data
        entries.append(entry)

    document: dict[str, Any] = {"model_name": model_name}
    if model_version is not None:
        document["model_version"] = model_version
    if request.id is not None:
        document["id"] = request.id
    document["outputs"] = entries
    header = encode_json(document)
    if not blobs:
        return header, {"content-type": JSON_TYPE}
    headers = {"content-type": OCTET_STREAM, HEADER_LENGTH: str(len(header))}
    return b"".join([header, *blobs]), headers


def _output_array(name: str, value: Any) -> np.ndarray[Any, Any]:
    try:
        array = np.asarray(value)
    except (ValueError, TypeError) as exc:
        logger.error("Output %r of the model is not an array (%s): %s", name, type(value).__name__, exc)
        raise InternalError() from None
    if not array.dtype.isnative:
        # orjson writes native byte order only, and datatype_of knows numpy's native types.
        array = array.astype(array.dtype.newbyteorder("="))
    if array.dtype.kind == "c":
        # The protocol has no complex datatype; as text, complex numbers would pass for strings a client cannot use.
        logger.error(
            "Output %r of the model has no V2 datatype (%s): the protocol has no complex numbers", name, array.dtype
        )
        raise InternalError()
    if array.dtype.kind == "f" and datatype_of(array.dtype) == "BYTES":
        # longdouble (float128 on x86 Linux): the protocol's widest float is FP64, so its values travel as FP64 (the
        # extra precision is lost; beyond FP64's range, an infinity), not as text.
        with np.errstate(over="ignore"):
            array = array.astype(np.float64)
    return array


def encode_error(message: str) -> bytes:
    """The protocol's error body, `{"error": message}`."""
    return orjson.dumps({"error": message})


def encode_json(document: Any) -> bytes:
    """A V2 document (metadata, a response header) as JSON; numpy arrays and scalars become lists and numbers, NaN
    and infinities `null`."""
    try:
        return orjson.dumps(document, default=_builtin, option=_OPTIONS)
    except orjson.JSONEncodeError as exc:
        logger.error("A V2 response cannot be encoded as JSON: %s", exc)
        raise InternalError() from None


def _builtin(value: Any) -> Any:
    # orjson hands over what it does not write itself: non-contiguous arrays, object arrays, other numpy values.
    if isinstance(value, (np.ndarray, np.generic)):
        converted = value.tolist()
        # tolist() keeps the numpy scalars Python has no type for (longdouble, clongdouble): handed back, orjson would
        # call this again for each, until it gives up on the recursion and says only that.
        if not isinstance(converted, np.generic):
            return converted
    raise TypeError(f"Type is not JSON serializable: {type(value).__name__}")


def model_metadata(
    name: str,
    versions: Sequence[str],
    platform: str,
    signature: Signature,
    parameters: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The `$metadata_model_response` object; `versions` is left out when there are none to ask for."""
    document: dict[str, Any] = {"name": name}
    if versions:
        document["versions"] = list(versions)
    document["platform"] = platform
    document["inputs"] = [spec.to_metadata() for spec in signature.inputs]
    document["outputs"] = [spec.to_metadata() for spec in signature.outputs]
    if parameters:
        document["parameters"] = dict(parameters)
    return document


def server_metadata(name: str, version: str, extensions: Sequence[str]) -> dict[str, Any]:
    """The `$metadata_server_response` object."""
    return {"name": name, "version": version, "extensions": list(extensions)}
