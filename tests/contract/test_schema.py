"""Telling inference-schema's input-conversion errors (400) from errors in the user's own code (500)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from inference_schema.parameter_types.numpy_parameter_type import NumpyParameterType
from inference_schema.parameter_types.standard_py_parameter_type import StandardPythonParameterType
from inference_schema.schema_decorators import input_schema, output_schema

from scoring_runtime.contract import schema

SAMPLE = NumpyParameterType(np.array([[1.0, 2.0]]))


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
