"""What an ONNX graph takes and returns: its tensors as V2 specs, from onnxruntime's session, and what the session does
not tell (ZipMap class labels, the producer, the opsets), from the file."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from scoring_runtime.errors import ModelLoadError
from scoring_runtime.models.tensors import TensorSpec

# onnxruntime's element type names and the V2 datatypes they travel as. Types V2 has no name for (bfloat16, float8,
# complex) cannot be sent or answered, so a graph that uses them is refused at load.
_DATATYPES = {
    "tensor(float)": "FP32",
    "tensor(double)": "FP64",
    "tensor(float16)": "FP16",
    "tensor(int8)": "INT8",
    "tensor(int16)": "INT16",
    "tensor(int32)": "INT32",
    "tensor(int64)": "INT64",
    "tensor(uint8)": "UINT8",
    "tensor(uint16)": "UINT16",
    "tensor(uint32)": "UINT32",
    "tensor(uint64)": "UINT64",
    "tensor(bool)": "BOOL",
    "tensor(string)": "BYTES",
}
# What skl2onnx's ZipMap returns for a classifier's probabilities: one {label: probability} map per row.
_ZIPMAP = re.compile(r"seq\(map\((int64|string),tensor\(float\)\)\)")

Label = int | str


class NodeArg(Protocol):
    """onnxruntime's description of a graph input or output."""

    @property
    def name(self) -> str: ...

    @property
    def type(self) -> str: ...

    @property
    def shape(self) -> Sequence[int | str | None]: ...


def is_zipmap(arg: NodeArg) -> bool:
    return _ZIPMAP.fullmatch(arg.type) is not None


def tensor_spec(arg: NodeArg, role: str, path: Path, labels: Sequence[Label] | None = None) -> TensorSpec:
    """The V2 spec of one input or output (`role`); a ZipMap output is described dense, one column per label."""
    if is_zipmap(arg):
        columns = len(labels) if labels is not None else -1
        parameters = {"labels": list(labels)} if labels is not None else {}
        return TensorSpec(arg.name, "FP32", (-1, columns), parameters)
    datatype = _DATATYPES.get(arg.type)
    if datatype is None:
        raise ModelLoadError(
            f"{path}: {role} '{arg.name}' is of type {arg.type}, which the Open Inference Protocol cannot carry"
        )
    # Symbolic dimensions are names, unknown ones None: any size goes.
    shape = tuple(dim if isinstance(dim, int) and dim >= 0 else -1 for dim in arg.shape)
    return TensorSpec(arg.name, datatype, shape)


def zipmap_labels(path: Path, outputs: Sequence[str]) -> dict[str, list[Label]]:
    """The class labels of the ZipMap nodes that produce `outputs`, read with the `onnx` package; {} without it, or
    for a file it cannot parse (an ORT-format model): the labels are then learnt from the first answer."""
    try:
        import onnx
        from onnx.helper import get_attribute_value
    except ImportError:
        return {}
    try:
        # Initializers kept outside the file are weights, which the labels do not need.
        model = onnx.load(str(path), load_external_data=False)
    except Exception:  # a protobuf DecodeError, or onnx's own for a file onnxruntime reads another way
        return {}
    found: dict[str, list[Label]] = {}
    for node in model.graph.node:
        if node.op_type != "ZipMap" or not node.output or node.output[0] not in outputs:
            continue
        for attribute in node.attribute:
            if attribute.name == "classlabels_int64s":
                found[node.output[0]] = [int(label) for label in get_attribute_value(attribute)]
            elif attribute.name == "classlabels_strings":
                found[node.output[0]] = [label.decode("utf-8") for label in get_attribute_value(attribute)]
    return found


@dataclass(frozen=True)
class ModelHeader:
    """The top-level facts of an ONNX file that onnxruntime's metadata leaves out."""

    ir_version: int | None = None
    producer_name: str = ""
    producer_version: str = ""
    opsets: Mapping[str, int] = field(default_factory=dict)


# ModelProto's field numbers (onnx.proto): kept stable by ONNX, as protobuf requires.
_IR_VERSION, _PRODUCER_NAME, _PRODUCER_VERSION, _OPSET_IMPORT = 1, 2, 3, 8
_VARINT, _FIXED64, _LENGTH, _FIXED32 = 0, 1, 2, 5


def read_header(path: Path) -> ModelHeader:
    """The header fields of an ONNX file, read from its protobuf wire format with the graph skipped unread: parsing
    the whole model would hold every weight in memory a second time. An empty header for a file not in that format."""
    fields: dict[int, Any] = {}
    opsets: dict[str, int] = {}
    try:
        with path.open("rb") as stream:
            while (tag := _varint(stream)) is not None:
                number, wire = tag >> 3, tag & 7
                if wire == _VARINT:
                    fields[number] = _required_varint(stream)
                elif wire == _LENGTH:
                    length = _required_varint(stream)
                    if number in (_PRODUCER_NAME, _PRODUCER_VERSION, _OPSET_IMPORT):
                        value = _read_exactly(stream, length)
                        if number == _OPSET_IMPORT:
                            domain, version = _opset(value)
                            opsets[domain] = version
                        else:
                            fields[number] = value.decode("utf-8", "replace")
                    else:
                        stream.seek(length, 1)
                elif wire in (_FIXED64, _FIXED32):
                    stream.seek(8 if wire == _FIXED64 else 4, 1)
                else:
                    return ModelHeader()
    except (OSError, ValueError):
        return ModelHeader()
    return ModelHeader(
        ir_version=fields.get(_IR_VERSION),
        producer_name=fields.get(_PRODUCER_NAME, ""),
        producer_version=fields.get(_PRODUCER_VERSION, ""),
        opsets=opsets,
    )


def _opset(message: bytes) -> tuple[str, int]:
    """An OperatorSetIdProto: domain (field 1, "" is the default ONNX domain) and version (field 2)."""
    domain, version, position = "", 0, 0
    while position < len(message):
        tag, position = _decode_varint(message, position)
        if tag == (1 << 3 | _LENGTH):
            length, position = _decode_varint(message, position)
            domain = message[position : position + length].decode("utf-8", "replace")
            position += length
        elif tag == (2 << 3 | _VARINT):
            version, position = _decode_varint(message, position)
        else:
            raise ValueError("unexpected field in an opset import")
    return domain, version


def _decode_varint(data: bytes, position: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if position >= len(data) or shift > 63:
            raise ValueError("truncated varint")
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, position
        shift += 7


def _varint(stream: BinaryIO) -> int | None:
    """The next varint, or None at the end of the file."""
    first = stream.read(1)
    if not first:
        return None
    value, shift, byte = 0, 0, first[0]
    while True:
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")
        byte = _read_exactly(stream, 1)[0]


def _required_varint(stream: BinaryIO) -> int:
    value = _varint(stream)
    if value is None:
        raise ValueError("truncated file")
    return value


def _read_exactly(stream: BinaryIO, size: int) -> bytes:
    data = stream.read(size)
    if len(data) != size:
        raise ValueError("truncated file")
    return data
