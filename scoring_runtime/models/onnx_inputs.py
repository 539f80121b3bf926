"""Client values turned into the arrays an ONNX graph's inputs take, or refused with a message naming the input: JSON
values from /score, and decoded V2 tensors."""

from __future__ import annotations

from typing import Any

import numpy as np

from scoring_runtime.errors import BadRequest
from scoring_runtime.models.tensors import TensorSpec, datatype_of, numpy_dtype

# The numeric kinds a JSON value may hold for an input of each kind: JSON has one number type, so an integral float
# (1.0) goes to an integer input as well.
_JSON_KINDS = {"b": "b", "i": "biuf", "u": "biuf", "f": "biuf"}


def from_json(spec: TensorSpec, value: Any) -> np.ndarray[Any, Any]:
    """A /score value (nested lists, or a scalar) as the input's array."""
    try:
        raw = np.asarray(value)  # no dtype: numpy tells what the JSON held
    except ValueError:
        raise BadRequest(f"Input '{spec.name}' is not a rectangular array: its nested lists differ in length") from None
    if spec.datatype == "BYTES":
        if raw.dtype.kind != "U":
            raise BadRequest(f"Input '{spec.name}' takes strings")
        array = raw.astype(object)
    else:
        target = numpy_dtype(spec.datatype)
        if raw.dtype.kind not in _JSON_KINDS[target.kind]:
            wanted = "true or false" if target.kind == "b" else "numbers"
            raise BadRequest(f"Input '{spec.name}' takes {wanted} ({spec.datatype}); it holds other values")
        if raw.dtype.kind == "f" and target.kind in "iu" and not np.all(np.mod(raw, 1) == 0):
            raise BadRequest(f"Input '{spec.name}' takes integers ({spec.datatype}); it holds fractions")
        array = _cast(spec, raw, target)
    check_shape(spec, array)
    return array


def from_tensor(spec: TensorSpec, array: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """A decoded V2 tensor as the input's array: cast when no kind of value is lost (FP64 to FP32, INT32 to INT64,
    INT64 to FP32), refused otherwise."""
    sent = datatype_of(array.dtype)
    if spec.datatype == "BYTES" or sent == "BYTES":
        if spec.datatype != sent:
            raise BadRequest(_mismatch(spec, sent))
        converted = _texts(spec, array)
    else:
        target = numpy_dtype(spec.datatype)
        if not np.can_cast(array.dtype, target, "same_kind"):
            raise BadRequest(_mismatch(spec, sent))
        converted = _cast(spec, array, target)
    check_shape(spec, converted)
    return converted


def check_shape(spec: TensorSpec, array: np.ndarray[Any, Any]) -> None:
    """BadRequest unless the array has the input's rank and each of its fixed dimensions."""
    expected = spec.shape
    # onnxruntime reports an input of unknown rank as rank 0, as it does a scalar: it checks those itself.
    if not expected:
        return
    if array.ndim != len(expected) or any(
        want not in (-1, got) for want, got in zip(expected, array.shape, strict=True)
    ):
        raise BadRequest(
            f"Input '{spec.name}' has shape {list(array.shape)}; the model takes {list(expected)} (-1: any size)"
        )


def _cast(spec: TensorSpec, array: np.ndarray[Any, Any], target: np.dtype[Any]) -> np.ndarray[Any, Any]:
    """The array as `target`, refused where a value would not survive the cast (numpy wraps integers around and
    turns large floats into inf silently)."""
    if array.dtype == target:
        return array
    if target.kind in "iu" and array.size and array.dtype.kind in "iuf":
        limits = np.iinfo(target)
        if array.min() < limits.min or array.max() > limits.max:
            raise BadRequest(
                f"Input '{spec.name}' holds values outside {spec.datatype}'s range [{limits.min}, {limits.max}]"
            )
    try:
        with np.errstate(over="raise"):
            return array.astype(target)
    except FloatingPointError:
        raise BadRequest(f"Input '{spec.name}' holds values too large for {spec.datatype}") from None


def _texts(spec: TensorSpec, array: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """BYTES elements (Python bytes) as the str objects onnxruntime's string tensors take: it would feed a bytes
    object as its repr."""
    try:
        texts = np.frompyfunc(_text, 1, 1)(array)
    except UnicodeDecodeError:
        raise BadRequest(f"Input '{spec.name}' holds bytes that are not UTF-8 text") from None
    return np.asarray(texts, dtype=object)


def _text(value: object) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _mismatch(spec: TensorSpec, sent: str) -> str:
    return f"Input '{spec.name}' was sent as {sent}; the model takes {spec.datatype}"
