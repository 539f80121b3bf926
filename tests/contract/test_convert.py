"""Which runs and parameters our conversion takes over, and that calls through it answer as inference-schema's do."""

from __future__ import annotations

import copy
import dataclasses
import functools
import importlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import wrapt
from inference_schema import schema_decorators
from inference_schema.parameter_types.numpy_parameter_type import NumpyParameterType
from inference_schema.parameter_types.standard_py_parameter_type import StandardPythonParameterType
from inference_schema.schema_decorators import input_schema, output_schema

from scoring_runtime.contract import convert
from scoring_runtime.contract.script import UserScript
from scoring_runtime.errors import BadRequest, RunFailed
from tests.conftest import ServerFactory
from tests.contract.test_script import load
from tests.helpers import SAMPLES, SCRIPTS

VECTOR = NumpyParameterType(np.array([1.0, 2.0]))


def plain_decorator(func: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return func(*args, **kwargs)

    return wrapper


@wrapt.decorator
def wrapt_decorator(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    return wrapped(*args, **kwargs)


def stacked(data: Any, options: Any = None) -> Any:
    return data, options


def test_layers_are_read_outermost_first_down_to_the_users_function() -> None:
    inner = plain_decorator(stacked)
    run = input_schema("data", VECTOR)(
        output_schema(VECTOR)(input_schema("options", StandardPythonParameterType(1))(inner))
    )
    fast = convert.plan(run)
    assert fast is not None
    assert fast.target is inner  # a decorator of the user's under the layers stays part of what is called
    assert [step.name for step in fast.steps] == ["data", "options"]


@pytest.mark.parametrize(
    "decorate",
    [
        lambda f: plain_decorator(input_schema("data", VECTOR)(f)),  # runs before the conversion
        lambda f: wrapt_decorator(input_schema("data", VECTOR)(f)),
        lambda f: input_schema("data", VECTOR)(plain_decorator(input_schema("options", VECTOR)(f))),
        lambda f: input_schema("data", VECTOR)(input_schema("data", VECTOR)(f)),  # one parameter, two layers
    ],
    ids=["plain-above", "wrapt-above", "between-layers", "twice"],
)
def test_layers_not_known_leave_the_call_to_inference_schema(
    decorate: Callable[[Any], Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    assert convert.plan(decorate(stacked)) is None
    assert "Typed inputs are converted by inference-schema: run() has layers not known here." in caplog.messages


def test_untested_inference_schema_release_is_left_alone(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    monkeypatch.setattr(convert, "TESTED_VERSIONS", frozenset({"0.1"}))
    assert convert.plan(input_schema("data", VECTOR)(stacked)) is None
    assert any("is not a release this server was tested with" in m for m in caplog.messages)


def test_without_inference_schemas_own_conversion_typed_inputs_stay_with_the_decorated_run(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    monkeypatch.delattr(schema_decorators, "_deserialize_input_argument")
    try:
        importlib.reload(convert)  # the private name is read when the module loads: that must not fail
        assert convert._library_convert is None
        run = input_schema("data", VECTOR)(stacked)
        assert convert.plan(run) is None
        assert any("has no _deserialize_input_argument" in m for m in caplog.messages)
        with pytest.raises(RuntimeError):
            convert.converter(VECTOR, "data")
    finally:
        monkeypatch.undo()
        importlib.reload(convert)
    assert convert.plan(input_schema("data", VECTOR)(stacked)) is not None


def test_optional_and_unconverted_layers() -> None:
    run = input_schema("data", VECTOR, optional=True)(
        input_schema("options", VECTOR, convert_to_provided_type=False)(stacked)
    )
    fast = convert.plan(run)
    assert fast is not None and [step.name for step in fast.steps] == ["data"]
    value: object
    for value in (None, [], 0):  # falsy optional values are passed as they are
        kwargs: dict[str, Any] = {"data": value, "options": [1]}
        assert fast.prepare(kwargs) and kwargs == {"data": value, "options": [1]}
    kwargs = {"options": [1]}
    assert fast.prepare(kwargs) and kwargs == {"options": [1]}
    kwargs = {"data": [3, 4]}
    assert fast.prepare(kwargs) and kwargs["data"].tolist() == [3.0, 4.0]


def test_a_required_layer_without_its_argument_goes_to_inference_schema() -> None:
    fast = convert.plan(input_schema("options", VECTOR)(stacked))
    assert fast is not None
    kwargs = {"data": [1]}
    assert not fast.prepare(kwargs) and kwargs == {"data": [1]}


def test_conversion_errors_name_the_outermost_failing_parameter() -> None:
    fast = convert.plan(input_schema("data", VECTOR)(input_schema("options", StandardPythonParameterType(1))(stacked)))
    assert fast is not None
    with pytest.raises(convert.ConversionError) as info:
        fast.prepare({"data": [[1.0]], "options": "x"})
    assert info.value.parameter == "data"
    assert str(info.value).startswith("Invalid value for the 'data' parameter: Invalid input array")


def test_the_log_names_the_converter_of_each_parameter(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    load("swagger_powerbi.py")
    when = pd.Series(pd.to_datetime(["2021-05-01"])).dtype  # datetime64[us] from pandas 3 on, [ns] before
    assert f"Input 'data' is converted by inference-schema (column 'when' of dtype {when})." in caplog.messages
    assert "Input 'options' is converted by scoring_runtime (standard dict)." in caplog.messages
    load("typed_pandas.py")
    assert "Input 'frame' is converted by scoring_runtime (pandas records, 3 columns)." in caplog.messages
    load("typed_numpy.py")
    assert "Input 'data' is converted by scoring_runtime (numpy float64, shape (n, 3))." in caplog.messages


# Each typed test script with inputs it accepts, inputs inference-schema rejects, inputs its own code fails on, and
# inputs that miss a decorated parameter. Called with and without our conversion, the answers must be the same.
CORPUS: dict[str | Path, list[dict[str, Any]]] = {
    "typed_numpy.py": [
        {"data": [[1, 2, 3.5]]},
        {"data": [[1.0, 2.0]]},
        {"data": [[1.0, "a", 3.0]]},
        {"data": [[-1.0, 2.0, 3.0]]},
        {"data": {"a": 1}},
        {"data": []},
        {},
    ],
    "typed_pandas.py": [
        {"frame": [{"a": 1.5, "b": 2, "name": "x"}, {"a": 2, "b": 3, "name": "y"}]},
        {"frame": [{"a": 1.5, "b": 2}]},
        {"frame": [{"a": 1.5, "b": "zz", "name": "x"}]},
        {"frame": [{"a": 1.5, "b": None, "name": "x"}]},
        {"frame": "text"},
    ],
    "typed_num.py": [{"num": 3}, {"num": "x"}, {"num": 13}, {"num": True}, {"num": 2, "request_headers": {}}],
    "swagger_stacked.py": [
        {"vector": [1, 2], "options": {"tags": [1]}},
        {"vector": [[1]], "options": []},
        {"vector": [1, 2], "options": []},
        {"vector": [1, 2]},
    ],
    "swagger_powerbi.py": [
        {"data": [{"input_name_1": 1.0, "input_name_2": "v", "input_name_3": 3, "when": "2021-05-01"}], "options": {}},
        {"data": [{"input_name_1": 1.0}], "options": {"threshold": 1}},
        {"data": [{"input_name_1": 1.0}]},
    ],
    "swagger_mixed.py": [{"data": {"a": [1]}}, {"data": [1]}],
    SAMPLES / "diabetes" / "score.py": [{"data": [[0.1] * 10, [0.2] * 10]}, {"data": [[0.1] * 9]}],
}


def answer(script: UserScript, kwargs: dict[str, Any]) -> tuple[str, Any]:
    try:
        return "ok", script.call(copy.deepcopy(kwargs))[0]
    except BadRequest as exc:
        return "400", exc.message
    except RunFailed:
        return "500", None


def same(ours: Any, theirs: Any) -> bool:
    if isinstance(theirs, pd.DataFrame):
        pd.testing.assert_frame_equal(ours, theirs, check_exact=True)
        return True
    if isinstance(theirs, np.ndarray):
        return bool(ours.dtype == theirs.dtype and ours.shape == theirs.shape and ours.tobytes() == theirs.tobytes())
    return bool(ours == theirs)


@pytest.mark.parametrize("script", list(CORPUS), ids=lambda s: Path(s).name)
def test_scripts_answer_as_with_inference_schema(script: str | Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZUREML_MODEL_DIR", str(SAMPLES / "diabetes" / "model"))
    ours = load(script)
    assert ours.fast is not None
    ours.init()
    theirs = dataclasses.replace(ours, fast=None)
    for kwargs in CORPUS[script]:
        (status, result), (expected_status, expected) = answer(ours, kwargs), answer(theirs, kwargs)
        assert status == expected_status, kwargs
        assert same(result, expected), kwargs


def test_async_run_is_awaited_with_converted_inputs() -> None:
    import asyncio

    script = load(SCRIPTS / "typed_async.py")
    assert script.fast is not None
    assert asyncio.run(script.call_async({"seconds": 0}))[0] == {"slept": 0}
    with pytest.raises(BadRequest, match=r"^Invalid value for the 'seconds' parameter: Invalid input data type"):
        asyncio.run(script.call_async({"seconds": "x"}))


@pytest.mark.slow
def test_servers_log_the_conversion_path_and_answer_alike(serve: ServerFactory) -> None:
    ours = serve("typed_pandas.py")
    theirs = serve("typed_decorated_above.py")
    frame = ours.post("/score", json={"frame": [{"a": 1.5, "b": 2, "name": "x"}]})
    assert frame.json() == [{"a": 1.5, "b": 2, "name": "x", "total": 3.5}]
    missing = ours.post("/score", json={"frame": [{"a": 1.5, "b": 2}]})
    assert (missing.status_code, missing.json()) == (
        400,
        {
            "message": "Invalid value for the 'frame' parameter: Invalid input data frame: data frame has size 2 on "
            "dimension #1, while expected value is 3"
        },
    )
    assert "Input 'frame' is converted by scoring_runtime (pandas records, 3 columns)." in ours.log()
    assert theirs.post("/score", json={"data": [[1.0, 2.5]]}).json() == [3.5]
    ragged = theirs.post("/score", json={"data": [[1.0, 2.0, 3.0]]})
    assert (ragged.status_code, ragged.json()) == (
        400,
        {
            "message": "Invalid value for the 'data' parameter: Invalid input array: array has size 3 on dimension #1, "
            "while expected value is 2"
        },
    )
    assert "Typed inputs are converted by inference-schema: run() has layers not known here." in theirs.log()
