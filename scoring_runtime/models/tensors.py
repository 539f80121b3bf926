"""Tensors as the Open Inference Protocol names them: a model's inputs and outputs, and their element types."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

# V2 datatype names and the numpy types they travel as. BYTES elements are Python bytes in an object array.
_NUMPY_TYPES: dict[str, Any] = {
    "BOOL": np.bool_,
    "UINT8": np.uint8,
    "UINT16": np.uint16,
    "UINT32": np.uint32,
    "UINT64": np.uint64,
    "INT8": np.int8,
    "INT16": np.int16,
    "INT32": np.int32,
    "INT64": np.int64,
    "FP16": np.float16,
    "FP32": np.float32,
    "FP64": np.float64,
    "BYTES": np.object_,
}
_DATATYPES = {np.dtype(numpy_type): name for name, numpy_type in _NUMPY_TYPES.items() if name != "BYTES"}
DATATYPES = frozenset(_NUMPY_TYPES)


def numpy_dtype(datatype: str) -> np.dtype[Any]:
    """The numpy type a V2 datatype travels as; KeyError for a name the protocol does not define."""
    dtype: np.dtype[Any] = np.dtype(_NUMPY_TYPES[datatype])
    return dtype


def datatype_of(dtype: np.dtype[Any]) -> str:
    """The V2 datatype of a numpy type: strings, bytes and objects are BYTES."""
    return _DATATYPES.get(np.dtype(dtype), "BYTES")


@dataclass(frozen=True)
class TensorSpec:
    """One input or output: its name, V2 datatype and shape (-1 where any size goes, as a symbolic dimension)."""

    name: str
    datatype: str
    shape: tuple[int, ...]
    # What else a client should know, published in the metadata's `parameters` and the API documents: class labels,
    # the feature names of a DataFrame-fitted model, the prediction method an output comes from.
    parameters: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=False)

    def to_metadata(self) -> dict[str, Any]:
        """The V2 `$metadata_tensor` object."""
        tensor: dict[str, Any] = {"name": self.name, "datatype": self.datatype, "shape": list(self.shape)}
        if self.parameters:
            tensor["parameters"] = dict(self.parameters)
        return tensor


@dataclass(frozen=True)
class Signature:
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]

    def input(self, name: str) -> TensorSpec | None:
        return next((spec for spec in self.inputs if spec.name == name), None)

    def output(self, name: str) -> TensorSpec | None:
        return next((spec for spec in self.outputs if spec.name == name), None)

    @cached_property
    def output_parameters(self) -> Mapping[str, Mapping[str, Any]]:
        """Each output's parameters (those that have any), by name: built once, read by every V2 answer."""
        return {spec.name: spec.parameters for spec in self.outputs if spec.parameters}
