"""Tensor elements between JSON and numpy for the Open Inference Protocol: a request's `data` into an array (one
numpy call for numbers), an output array's BYTES elements into text or bytes."""

from __future__ import annotations

from typing import Any

import numpy as np

from scoring_runtime.errors import BadRequest
from scoring_runtime.models.tensors import numpy_dtype

_FLOATS = frozenset({"FP16", "FP32", "FP64"})


def tensor_from_json(name: str, datatype: str, shape: list[int], count: int, data: Any) -> np.ndarray[Any, Any]:
    """The input tensor a JSON `data` array describes, flat or nested in row-major order; `count` is the element count
    of `shape`. BYTES strings become UTF-8 bytes in an object array."""
    if not isinstance(data, list):
        raise BadRequest(f"Input {name!r}: data must be an array, got {type(data).__name__}")
    try:
        if datatype == "BYTES":
            array = _bytes_from_json(name, data)
        elif datatype in _FLOATS:
            # A number beyond the type's range becomes an infinity, as a C cast makes it; numpy would warn about it.
            with np.errstate(over="ignore"):
                array = np.asarray(data, dtype=numpy_dtype(datatype))
        else:
            array = _exact_from_json(name, datatype, data)
    except (ValueError, TypeError, OverflowError) as exc:
        raise BadRequest(f"Input {name!r}: data cannot be read as {datatype}: {exc}") from None
    if array.size != count:
        raise BadRequest(f"Input {name!r}: shape {shape} takes {count} elements, but data holds {array.size}")
    return array.reshape(shape)


def _exact_from_json(name: str, datatype: str, data: list[Any]) -> np.ndarray[Any, Any]:
    # Integers and booleans are read as numpy infers them and checked, rather than cast straight to the datatype: a
    # straight cast would truncate 1.5 to 1 and take true for 1 or "7" for 7 without a word.
    array = np.asarray(data)
    dtype = numpy_dtype(datatype)
    if array.size == 0:
        return np.empty(array.shape, dtype=dtype)
    kind = array.dtype.kind
    if datatype == "BOOL":
        if kind != "b":
            raise BadRequest(f"Input {name!r}: BOOL data must be true or false")
        return array
    if kind not in "iu":
        # numpy infers float64 for integers that fit int64 and uint64 only apart ([-1, 2**63], [0, 2**64 - 1]): those
        # are told from numbers with a fraction one by one, off the common path, and then cast (range checked).
        if kind not in "fO" or not all(type(item) is int for item in np.asarray(data, dtype=object).flat):
            raise BadRequest(f"Input {name!r}: {datatype} data must be integers")
        return np.asarray(data, dtype=dtype)
    if array.dtype != dtype:
        limits = np.iinfo(dtype)
        if array.min() < limits.min or array.max() > limits.max:
            raise BadRequest(f"Input {name!r}: data holds integers outside the range of {datatype}")
    return array.astype(dtype, copy=False)


def _bytes_from_json(name: str, data: list[Any]) -> np.ndarray[Any, Any]:
    # An object array keeps strings whole while numpy finds the nesting; ragged nesting leaves lists as elements.
    items = np.asarray(data, dtype=object).ravel().tolist()
    try:
        encoded = [item.encode("utf-8") for item in items]
    except AttributeError:
        raise BadRequest(f"Input {name!r}: BYTES data must be strings") from None
    except UnicodeEncodeError as exc:
        raise BadRequest(f"Input {name!r}: BYTES data holds a string that is not valid Unicode: {exc}") from None
    elements = np.empty(len(encoded), dtype=object)
    elements[:] = encoded
    return elements


def output_texts(array: np.ndarray[Any, Any]) -> list[str] | None:
    """A BYTES output's elements in row-major order as JSON strings; None when one is bytes that are not UTF-8 (JSON
    cannot carry them: the output travels as binary data). Elements that are neither text nor bytes are written as
    `str()` writes them."""
    if array.dtype.kind == "U":
        texts: list[str] = array.ravel().tolist()
        return texts
    texts = []
    for item in _items(array):
        if isinstance(item, str):
            texts.append(item)
        elif isinstance(item, (bytes, bytearray)):
            try:
                texts.append(item.decode("utf-8"))
            except UnicodeDecodeError:
                return None
        else:
            texts.append(str(item))
    return texts


def output_bytes(array: np.ndarray[Any, Any]) -> list[bytes]:
    """A BYTES output's elements in row-major order as bytes: text as UTF-8, other objects as `str()` writes them."""
    blobs = []
    for item in _items(array):
        if isinstance(item, (bytes, bytearray)):
            blobs.append(bytes(item))
        else:
            # surrogatepass: a string holding a lone surrogate still has bytes to send.
            blobs.append((item if isinstance(item, str) else str(item)).encode("utf-8", "surrogatepass"))
    return blobs


def _items(array: np.ndarray[Any, Any]) -> list[Any]:
    flat = array.ravel()
    # tolist() gives Python str, bytes and objects at C speed; other kinds (datetimes, complex) keep numpy's scalars,
    # whose str() is numpy's spelling.
    return flat.tolist() if array.dtype.kind in "USO" else list(flat)
