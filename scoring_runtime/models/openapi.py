"""A served model's /score body and answer as JSON Schema, from the model itself (its tensors, feature names,
prediction methods, classes) with an example: what the Swagger documents publish for a deployment without a script.
Written for Swagger 2 as well as OpenAPI 3: no oneOf."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from scoring_runtime.models.base import ServedModel
    from scoring_runtime.models.tensors import TensorSpec

_TABULAR = frozenset({"sklearn", "xgboost", "lightgbm"})


def any_object(description: str) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object"}
    if description:
        schema["description"] = description
    return schema


def element_schema(datatype: str) -> dict[str, Any]:
    if datatype.startswith("FP"):
        return {"type": "number", "format": "double" if datatype == "FP64" else "float"}
    if datatype.startswith(("INT", "UINT")):
        return {"type": "integer", "format": "int64" if datatype.endswith("64") else "int32"}
    if datatype == "BOOL":
        return {"type": "boolean"}
    return {"type": "string"}


def tensor_schema(spec: TensorSpec) -> dict[str, Any]:
    """Nested arrays, one level per dimension, each sized where the dimension is fixed."""
    schema = element_schema(spec.datatype)
    for size in reversed(spec.shape):
        schema = {"type": "array", "items": schema}
        if size >= 0:
            schema["minItems"] = schema["maxItems"] = size
    return schema


def score_schemas(model: ServedModel) -> tuple[dict[str, Any], dict[str, Any]]:
    """The /score request and answer of `model`."""
    if model.framework in _TABULAR:
        request, answer = _tabular(model)
    elif model.framework == "tensorflow":
        request, answer = _tensorflow(model)
    else:
        request, answer = _by_name(model)
    example = getattr(model, "example", None)
    value = example() if callable(example) else None
    if value is not None:
        request["example"] = value
    return request, answer


def _tabular(model: ServedModel) -> tuple[dict[str, Any], dict[str, Any]]:
    inputs = model.signature.inputs
    # A DataFrame-fitted model with text columns takes one tensor per column, named after it.
    names = [spec.name for spec in inputs] if len(inputs) > 1 else inputs[0].parameters.get("feature_names")
    rows: dict[str, Any] = {
        "type": "array",
        "items": tensor_schema(inputs[0])["items"],
        "description": "Rows of features, in the model's order.",
    }
    if names:
        # Rows or records: Swagger 2 has no oneOf, so the items are left open and the description says both.
        rows["items"] = {}
        rows["description"] = f"Rows of features ({', '.join(names)}), or records by feature name."
    methods = [output.name for output in model.signature.outputs]
    properties: dict[str, Any] = {
        "data": rows,
        "method": {"type": "string", "enum": methods, "description": "The prediction method to call."},
    }
    if model.framework == "sklearn":
        properties["with_classes"] = {
            "type": "boolean",
            "description": "Answer {method, classes, predictions} instead of the bare list.",
        }
    request = {"type": "object", "required": ["data"], "properties": properties}
    answer = {"type": "array", "description": "One prediction per row (the x-ms-model-method header names the method)."}
    return request, answer


def _by_name(model: ServedModel) -> tuple[dict[str, Any], dict[str, Any]]:
    inputs = model.signature.inputs
    properties = {spec.name: tensor_schema(spec) for spec in inputs}
    request: dict[str, Any] = {"type": "object", "properties": properties, "required": [spec.name for spec in inputs]}
    if len(inputs) == 1:
        # A single input may also be sent as {"data": ...} (Swagger 2 has no oneOf: neither name is required).
        request = {"type": "object", "properties": {"data": properties[inputs[0].name], **properties}}
    answer = {
        "type": "object",
        "properties": {spec.name: tensor_schema(spec) for spec in model.signature.outputs},
    }
    return request, answer


def _tensorflow(model: ServedModel) -> tuple[dict[str, Any], dict[str, Any]]:
    inputs = model.signature.inputs
    if len(inputs) == 1:
        instance: dict[str, Any] = tensor_schema(inputs[0])["items"] if inputs[0].shape else tensor_schema(inputs[0])
    else:
        instance = {"type": "object", "properties": {spec.name: {} for spec in inputs}}
    request = {
        "type": "object",
        "description": "TensorFlow Serving's predict request: instances (rows) or inputs (columns).",
        "properties": {
            "signature_name": {"type": "string"},
            "instances": {"type": "array", "items": instance},
            "inputs": {},
        },
    }
    answer = {
        "type": "object",
        "properties": {"predictions": {"type": "array"}, "outputs": {}},
    }
    return request, answer
