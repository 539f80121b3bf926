"""A typed score.py seen as a model of the Open Inference Protocol: one input tensor per run() parameter, described
by its inference-schema decorator, and run()'s result as output tensors.

Inputs are handed to run() as the JSON values /score would have given it (nested lists, strings for BYTES), so the
script's own decorators convert them exactly as they convert a /score body. A parameter whose schema is not an array
of scalars (a DataFrame's records, an object) is a BYTES tensor of one element: the value's JSON text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from scoring_runtime.contract import payload, schema
from scoring_runtime.contract.script import HEADERS_PARAMETER, UserScript
from scoring_runtime.errors import BadRequest, NotFound
from scoring_runtime.models.base import Loaded, Scored
from scoring_runtime.models.tensors import Signature, TensorSpec

FRAMEWORK = "python"
OUTPUT = "output"
_JSON_PARAMETERS = {"content_type": "json"}  # the element is the parameter's value as JSON text
_SCALARS = {"number": "FP64", "integer": "INT64", "boolean": "BOOL", "string": "BYTES"}


class ScriptModel:
    """A typed run() under the protocol's names. Calls go through UserScript.call: its conversion errors are 400s,
    its failures logged 500s, as on /score."""

    framework = FRAMEWORK

    def __init__(self, script: UserScript, name: str, version: str | None) -> None:
        self.script = script
        self.name = name
        self.version = version
        self.loaded = Loaded(Path(script.location))
        self.signature = signature_of(script)
        self._json_inputs = frozenset(spec.name for spec in self.signature.inputs if spec.parameters)

    def score(self, data: Any) -> Scored:
        raise NotFound("A script's /score is its run()")  # never called: /score calls the script itself

    def describe(self) -> dict[str, Any]:
        return {"entry_script": self.script.location, "parameters": list(self.script.parameters)}

    def infer(self, inputs: Mapping[str, np.ndarray[Any, Any]], outputs: Sequence[str] | None) -> dict[str, Any]:
        script = self.script
        unknown = sorted(set(inputs) - set(script.parameters))
        if unknown:
            raise BadRequest(f"Unknown input(s) {', '.join(unknown)}: run() takes {', '.join(script.parameters)}")
        missing = sorted(script.required - set(inputs))
        if missing:
            raise BadRequest(f"Missing input(s) {', '.join(missing)}, which run() requires")
        kwargs = {name: self._argument(name, array) for name, array in inputs.items()}
        if script.wants_headers:
            kwargs[HEADERS_PARAMETER] = {}
        result, _ = script.call(kwargs)
        tensors = _tensors(result)
        if outputs is None:
            return tensors
        absent = [name for name in outputs if name not in tensors]
        if absent:
            raise BadRequest(f"Unknown output(s) {', '.join(absent)}: run() returned {', '.join(tensors)}")
        return {name: tensors[name] for name in outputs}

    def _argument(self, name: str, array: np.ndarray[Any, Any]) -> Any:
        if name in self._json_inputs:
            if array.size != 1:
                raise BadRequest(f"Input '{name}' takes one element: the value as JSON text")
            try:
                return orjson.loads(array.reshape(-1)[0])
            except (orjson.JSONDecodeError, TypeError) as exc:
                raise BadRequest(f"Input '{name}' is not JSON text: {exc}") from None
        if array.dtype == object:
            return _decoded(array.tolist())
        return array.tolist()


def _decoded(value: Any) -> Any:
    if isinstance(value, list):
        return [_decoded(item) for item in value]
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            raise BadRequest("A BYTES input element is not UTF-8 text") from None
    return value


def _tensors(result: Any) -> dict[str, np.ndarray[Any, Any]]:
    """run()'s result as output tensors: each key of a dict, or the whole value as `output`. A value with no tensor
    form (None, ragged lists, records, objects) is a BYTES tensor of one element: its JSON text, as /score gives it."""
    values = result if isinstance(result, dict) else {OUTPUT: result}
    tensors = {}
    for name, value in values.items():
        array: np.ndarray[Any, Any] | None
        try:
            array = np.asarray(value)
        except ValueError:  # ragged
            array = None
        if array is None or (array.dtype == object and not _all_text(array)):
            # None is JSON's null here: /score's `{}` for it is the reference's, not JSON's.
            text = b"null" if value is None else payload.encode_result(value)[0]
            array = np.array([text], dtype=object)
        tensors[str(name)] = array
    return tensors


def _all_text(array: np.ndarray[Any, Any]) -> bool:
    return array.size > 0 and all(isinstance(item, (str, bytes)) for item in array.reshape(-1).tolist())


def signature_of(script: UserScript) -> Signature:
    """The input tensors from run()'s @input_schema, the output from its @output_schema."""
    inputs_schema, output_schema, _ = schema.swagger_schemas(script.run)
    properties = inputs_schema.get("properties", {})
    example = inputs_schema.get("example") or {}
    inputs = tuple(_spec(name, properties.get(name, {}), example.get(name)) for name in script.parameters)
    outputs = (_spec(OUTPUT, output_schema, output_schema.get("example")),)
    return Signature(inputs, outputs)


def _spec(name: str, node: dict[str, Any], example: Any) -> TensorSpec:
    rank = 0
    while node.get("type") == "array" and isinstance(node.get("items"), dict):
        node, rank = node["items"], rank + 1
    datatype = _SCALARS.get(str(node.get("type")))
    if datatype == "FP64" and node.get("format") == "float":
        datatype = "FP32"
    if datatype is None:
        return TensorSpec(name, "BYTES", (1,), dict(_JSON_PARAMETERS))
    if datatype == "INT64" and node.get("format") == "int32":
        datatype = "INT32"
    return TensorSpec(name, datatype, _shape(example, rank))


def _shape(example: Any, rank: int) -> tuple[int, ...]:
    """The example's sizes, the first (the batch) left open."""
    sizes: list[int] = []
    value = example
    for _ in range(rank):
        sizes.append(len(value) if isinstance(value, list) else -1)
        value = value[0] if isinstance(value, list) and value else None
    if sizes:
        sizes[0] = -1
    return tuple(sizes)
