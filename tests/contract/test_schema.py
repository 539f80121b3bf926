"""Telling inference-schema's input-conversion errors (400) from errors in the user's own code (500)."""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from inference_schema import schema_decorators
from inference_schema.parameter_types.numpy_parameter_type import NumpyParameterType
from inference_schema.parameter_types.standard_py_parameter_type import StandardPythonParameterType
from inference_schema.schema_decorators import input_schema, output_schema

from scoring_runtime.contract import schema

SAMPLE = NumpyParameterType(np.array([[1.0, 2.0]]))


@pytest.fixture(autouse=True, params=["private function", "package fallback"])
def conversion_frames(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test twice: conversion frames found by inference-schema 1.8's private function, and as they are found
    where a release has renamed it (by the frames' package and their `param_name`)."""
    if request.param == "package fallback":
        monkeypatch.setattr(schema, "_CONVERT_CODE", None)


def plain_decorator(func: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return func(*args, **kwargs)

    return wrapper


@input_schema("data", SAMPLE)
@output_schema(SAMPLE)
def simple(data: Any) -> Any:
    return np.array([[1, 2], [3]], dtype=float)  # raises the same ValueError a ragged input would


@plain_decorator
@input_schema("data", SAMPLE)
def decorated_above(data: Any) -> Any:
    raise ValueError("user")


@input_schema("data", SAMPLE)
@plain_decorator
def decorated_below(data: Any) -> Any:
    raise ValueError("user")


@input_schema("inner", SAMPLE)
def helper(inner: Any) -> Any:
    return inner


@input_schema("data", StandardPythonParameterType({"nested": SAMPLE}))
def calls_decorated_helper(data: Any) -> Any:
    return helper(inner=[[1.0]])  # a conversion error, but inside the user's code: 500


def classify(func: Callable[..., Any], **kwargs: Any) -> str | None:
    with pytest.raises(Exception) as info:
        func(**kwargs)
    return schema.conversion_failure(info.value, schema.user_code(func))


@pytest.mark.parametrize("func", [simple, decorated_above, decorated_below], ids=lambda f: f.__name__)
def test_bad_input_is_a_conversion_failure_naming_the_parameter(func: Callable[..., Any]) -> None:
    assert classify(func, data=[[1.0, 2.0, 3.0]]) == "data"
    assert classify(func, data=[[1.0], [2.0, 3.0]]) == "data"
    assert classify(func, data="not a list") == "data"


@pytest.mark.parametrize("func", [simple, decorated_above, decorated_below], ids=lambda f: f.__name__)
def test_errors_raised_by_user_code_are_not_conversion_failures(func: Callable[..., Any]) -> None:
    assert classify(func, data=[[1.0, 2.0]]) is None


def test_nested_parameter_reports_the_top_level_name() -> None:
    assert classify(calls_decorated_helper, data={"nested": [[1.0, 2.0, 3.0]]}) == "data"


def test_conversion_error_inside_user_code_is_a_user_error() -> None:
    assert classify(calls_decorated_helper, data={"nested": [[1.0, 2.0]]}) is None


def test_is_decorated() -> None:
    assert schema.is_decorated(simple)
    assert not schema.is_decorated(plain_decorator)


def test_the_module_imports_where_the_private_function_is_gone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(schema_decorators, "_deserialize_input_argument")
    try:
        importlib.reload(schema)
        assert schema._CONVERT_CODE is None
        assert classify(simple, data="not a list") == "data"
    finally:
        monkeypatch.undo()
        importlib.reload(schema)
    assert schema._CONVERT_CODE is schema_decorators._deserialize_input_argument.__code__


def test_without_the_private_function_a_layer_that_converts_inline_names_its_parameter(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A release that converts inside the decorator layer itself: no frame takes param_name as an argument, and the
    # innermost one that knows it names the parameter.
    monkeypatch.setattr(schema, "_CONVERT_CODE", None)
    source = (
        "def layer(param_name):\n"
        "    def convert(value):\n"
        "        param_name\n"
        "        raise ValueError(value)\n"
        "    return convert\n"
    )
    namespace: dict[str, Any] = {"__name__": "inference_schema.synthetic"}
    exec(compile(source, "synthetic.py", "exec"), namespace)
    with pytest.raises(ValueError) as info:
        namespace["layer"]("data")("bad")
    assert schema.conversion_failure(info.value, None) == "data"
