"""The /score schema published for a model without a script, from its signature: per framework, valid as OpenAPI
3.0 and Swagger 2 schema objects (no oneOf), with the model's own example."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from openapi_schema_validator import OAS30Validator

from scoring_runtime.models.base import Loaded, Scored
from scoring_runtime.models.openapi import any_object, element_schema, score_schemas, tensor_schema
from scoring_runtime.models.tensors import Signature, TensorSpec


@dataclass
class Described:
    """Only what openapi.py reads of a served model: its framework, signature and example."""

    framework: str
    signature: Signature
    sample: dict[str, Any] | None = None
    name: str = "m"
    version: str | None = None
    loaded: Loaded = field(default_factory=lambda: Loaded(Path("m")))

    def example(self) -> dict[str, Any] | None:
        return self.sample

    def score(self, data: Any) -> Scored:
        return Scored(data)

    def infer(self, inputs: Any, outputs: Any) -> dict[str, Any]:
        return {}


def valid(schema: dict[str, Any], instance: Any) -> bool:
    return bool(OAS30Validator(schema).is_valid(instance))


def no_one_of(schema: Any) -> bool:
    if isinstance(schema, dict):
        return "oneOf" not in schema and all(no_one_of(value) for value in schema.values())
    if isinstance(schema, list):
        return all(no_one_of(value) for value in schema)
    return True


def test_elements_and_tensors() -> None:
    assert element_schema("FP32") == {"type": "number", "format": "float"}
    assert element_schema("UINT8") == {"type": "integer", "format": "int32"}
    assert element_schema("INT64") == {"type": "integer", "format": "int64"}
    assert element_schema("BOOL") == {"type": "boolean"} and element_schema("BYTES") == {"type": "string"}
    schema = tensor_schema(TensorSpec("x", "FP64", (-1, 2)))
    assert valid(schema, [[1, 2], [3, 4]]) and not valid(schema, [[1, 2, 3]]) and not valid(schema, [["a", 1]])
    assert any_object("") == {"type": "object"}
    assert any_object("several") == {"type": "object", "description": "several"}


def test_a_tabular_model_documents_rows_methods_and_its_example() -> None:
    inputs = (TensorSpec("input", "FP64", (-1, 4)),)
    outputs = (TensorSpec("predict", "INT64", (-1,)), TensorSpec("predict_proba", "FP64", (-1, 3)))
    model = Described("sklearn", Signature(inputs, outputs), {"data": [[0.0, 0.0, 0.0, 0.0]]})
    request, answer = score_schemas(model)
    assert valid(request, model.sample) and request["example"] == model.sample
    assert not valid(request, {"data": [[1, 2, 3]]}) and not valid(request, {"data": [[1, 2, 3, 4]], "method": "fit"})
    assert valid(request, {"data": [[1, 2, 3, 4]], "method": "predict", "with_classes": True})
    assert answer["type"] == "array" and no_one_of(request)
    booster = Described("xgboost", Signature(inputs, outputs[:1]))
    assert "with_classes" not in score_schemas(booster)[0]["properties"]
    assert "example" not in score_schemas(booster)[0]


def test_feature_names_allow_records() -> None:
    named = (TensorSpec("input", "FP64", (-1, 2), {"feature_names": ["a", "b"]}),)
    request, _ = score_schemas(Described("sklearn", Signature(named, ())))
    assert valid(request, {"data": [{"a": 1, "b": 2}]}) and valid(request, {"data": [[1, 2]]})
    assert "a, b" in request["properties"]["data"]["description"]
    columns = (TensorSpec("age", "FP64", (-1,)), TensorSpec("city", "BYTES", (-1,)))
    request, _ = score_schemas(Described("sklearn", Signature(columns, ())))
    assert valid(request, {"data": [[30, "Paris"]]}) and valid(request, {"data": [{"age": 30, "city": "Paris"}]})
    assert "age, city" in request["properties"]["data"]["description"]


@pytest.mark.parametrize("count", [1, 2])
def test_a_graph_takes_its_inputs_by_name(count: int) -> None:
    inputs = tuple(TensorSpec(f"in{index}", "FP32", (-1, 3)) for index in range(count))
    outputs = (TensorSpec("label", "INT64", (-1,)), TensorSpec("probabilities", "FP32", (-1, 3)))
    request, answer = score_schemas(Described("onnx", Signature(inputs, outputs)))
    by_name = {spec.name: [[1.0, 2.0, 3.0]] for spec in inputs}
    assert valid(request, by_name)
    assert valid(request, {"data": [[1.0, 2.0, 3.0]]}) == (count == 1)
    assert not valid(request, {"in0": [[1.0, 2.0]]})
    assert valid(answer, {"label": [0], "probabilities": [[0.1, 0.2, 0.7]]}) and no_one_of(request)


def test_a_saved_model_documents_instances_and_inputs() -> None:
    single = (TensorSpec("x", "FP32", (-1, 4)),)
    request, answer = score_schemas(Described("tensorflow", Signature(single, single), {"instances": [[0, 0, 0, 0]]}))
    assert valid(request, {"instances": [[1, 2, 3, 4]]}) and not valid(request, {"instances": [[1, 2]]})
    assert valid(request, {"signature_name": "serving_default", "inputs": [[1, 2, 3, 4]]})
    assert valid(answer, {"predictions": [[1.0]]})
    named = (TensorSpec("a", "FP32", (-1,)), TensorSpec("text", "BYTES", (-1,)))
    request, _ = score_schemas(Described("tensorflow", Signature(named, single)))
    assert valid(request, {"instances": [{"a": 1.0, "text": "x"}]})
    scalar = (TensorSpec("v", "FP32", ()),)
    request, _ = score_schemas(Described("tensorflow", Signature(scalar, scalar)))
    assert valid(request, {"instances": [1.5]})
