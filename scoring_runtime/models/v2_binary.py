"""The binary tensor data extension of the Open Inference Protocol's REST API, as Triton and KServe define it.

A request or response may carry tensors as raw bytes after its JSON header (whose length the
`Inference-Header-Content-Length` header gives), each in tensor order, taking the `binary_data_size` bytes its
`parameters` declare: numbers little-endian in row-major order, BOOL one byte per element, and each BYTES element
preceded by its length as a 4-byte little-endian unsigned integer.
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np

from scoring_runtime.errors import BadRequest
from scoring_runtime.models.tensors import numpy_dtype

_LENGTH = struct.Struct("<I")


def tensor_from_binary(
    name: str, datatype: str, shape: list[int], count: int, data: memoryview
) -> np.ndarray[Any, Any]:
    """The input tensor `data` holds: a read-only view of the body for numbers and BOOL (no copy), an object array of
    bytes for BYTES. `count` is the element count of `shape`."""
    if datatype == "BYTES":
        return byte_elements(name, count, data).reshape(shape)
    # The wire is little-endian whatever the host's order.
    dtype = numpy_dtype(datatype).newbyteorder("<")
    expected = count * dtype.itemsize
    if len(data) != expected:
        raise BadRequest(
            f"Input {name!r}: a {datatype} tensor of shape {shape} takes {expected} bytes of binary data, "
            f"but its binary_data_size is {len(data)}"
        )
    if datatype == "BOOL":
        raw = np.frombuffer(data, dtype=np.uint8)
        # numpy reads any non-zero byte as a bool it cannot compare reliably: only 0 and 1 are booleans.
        if count and int(raw.max()) > 1:
            raise BadRequest(f"Input {name!r}: BOOL binary data must hold bytes 0 and 1 only")
        return raw.view(np.bool_).reshape(shape)
    return np.frombuffer(data, dtype=dtype).reshape(shape)


def byte_elements(name: str, count: int, data: memoryview) -> np.ndarray[Any, Any]:
    """`count` length-prefixed BYTES elements filling `data` exactly, as a flat object array of bytes."""
    unpack = _LENGTH.unpack_from
    items: list[bytes] = []
    append = items.append
    offset = 0
    # Unchecked on the way (a length past the end shows in the final offset, a prefix past it as struct.error): the
    # checks that name the faulty element run only for a request that has one.
    try:
        for _ in range(count):
            (length,) = unpack(data, offset)
            offset += _LENGTH.size
            append(data[offset : offset + length].tobytes())
            offset += length
    except struct.error:
        offset = -1
    if offset != len(data):
        raise BadRequest(f"Input {name!r}: {_bytes_problem(count, data)}")
    elements = np.empty(count, dtype=object)
    elements[:] = items
    return elements


def _bytes_problem(count: int, data: memoryview) -> str:
    offset = 0
    end = len(data)
    for index in range(count):
        if offset + _LENGTH.size > end:
            return f"binary BYTES data ends before element {index}; its shape needs {count} elements"
        (length,) = _LENGTH.unpack_from(data, offset)
        offset += _LENGTH.size
        if offset + length > end:
            remain = end - offset
            return f"BYTES element {index} declares {length} bytes, but only {remain} bytes of its binary data remain"
        offset += length
    return f"binary BYTES data holds {end - offset} bytes beyond the {count} elements its shape needs"


def binary_numbers(array: np.ndarray[Any, Any]) -> memoryview:
    """A numeric or BOOL array as the little-endian row-major bytes the wire carries, without a copy when the array
    already is laid out so."""
    return np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).reshape(-1).data


def binary_bytes(elements: list[bytes]) -> bytes:
    """BYTES elements, each preceded by its 4-byte little-endian length."""
    pack = _LENGTH.pack
    return b"".join([part for element in elements for part in (pack(len(element)), element)])
