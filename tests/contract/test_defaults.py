"""Typed run() parameters with defaults, in process: arguments are built as /score builds them, and run() is called.

The reference passes every parameter by keyword, its default when the request has none (so inference-schema converts
a decorated default too); a parameter without a default that the request lacks is a 400; extra keys are ignored.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest

from scoring_runtime.app.lifecycle import load_user_script
from scoring_runtime.config import load_settings
from scoring_runtime.contract import payload
from scoring_runtime.contract.script import UserScript
from scoring_runtime.errors import BadRequest, RunFailed
from tests.conftest import ServerFactory
from tests.helpers import SCRIPTS

RUN_FAILED = "An unexpected error occurred in scoring script. Check the logs for more info."


def load(script: str) -> UserScript:
    settings, _ = load_settings({"entry_script": str(SCRIPTS / script)}, environ={})
    return load_user_script(settings)


def arguments(script: UserScript, method: str, body: bytes = b"", query: bytes = b"") -> dict[str, Any]:
    data = payload.typed_input(method, body, query, "application/json")
    return payload.run_arguments(data, script.parameters, script.required)


def both_paths(script: str) -> list[UserScript]:
    """The script with our own input conversion, and with inference-schema's decorated run() converting."""
    loaded = load(script)
    assert loaded.fast is not None
    return [loaded, dataclasses.replace(loaded, fast=None)]


@pytest.mark.parametrize("path", [0, 1], ids=["fast", "inference-schema"])
@pytest.mark.parametrize(
    ("method", "body", "query", "expected"),
    [
        ("POST", b'{"num": 1}', b"", [1, 10, "red"]),
        ("POST", b'{"num": 1, "factor": 5}', b"", [1, 5, "red"]),
        ("POST", b'{"num": 1, "color": "blue"}', b"", [1, 10, "blue"]),
        ("POST", b'{"num": 1, "extra": 2, "request_headers": {}}', b"", [1, 10, "red"]),
        ("POST", b'{"num": 1}', b"factor=3&color=blue", [1, 10, "red"]),  # a POST reads its body only
        ("GET", b"", b"num=1", [1, 10, "red"]),
        ("GET", b"", b"num=1&color=blue", [1, 10, "blue"]),
        ("GET", b"", b"num=1&factor=7&color=blue&extra=x", [1, 7, "blue"]),
    ],
)
def test_missing_parameters_get_their_defaults(
    path: int, method: str, body: bytes, query: bytes, expected: list[Any]
) -> None:
    script = both_paths("defaults_typed.py")[path]
    assert script.call(arguments(script, method, body, query))[0] == expected


def test_defaults_are_known_for_typed_scripts_only() -> None:
    assert load("defaults_typed.py").defaults == {"factor": 10, "color": "red"}
    assert load("plain_default.py").defaults == {}  # plain and raw calls leave the others to Python
    assert load("raw_echo.py").defaults == {}


@pytest.mark.parametrize("path", [0, 1], ids=["fast", "inference-schema"])
def test_a_single_decorated_parameter_with_a_default(path: int) -> None:
    script = both_paths("defaults_one_typed.py")[path]
    assert script.call(arguments(script, "POST", b'{"num": "x"}'))[0] == ["x", 10, "red"]
    assert script.call(arguments(script, "GET", b"", b"num=2&color=blue"))[0] == [2, 10, "blue"]
    assert script.call(arguments(script, "POST", b'{"num": 1, "factor": 4}'))[0] == [1, 4, "red"]


def test_a_missing_parameter_without_a_default_is_a_400() -> None:
    script = load("defaults_typed.py")
    for method, body, query in [("POST", b'{"factor": 5}', b""), ("GET", b"", b"factor=5")]:
        with pytest.raises(BadRequest, match=r"^A value is not provided for the 'num' parameter\.$"):
            arguments(script, method, body, query)


@pytest.mark.parametrize("path", [0, 1], ids=["fast", "inference-schema"])
def test_a_default_its_schema_rejects_fails_the_script_not_the_client(
    path: int, caplog: pytest.LogCaptureFixture
) -> None:
    script = both_paths("defaults_rejected.py")[path]
    with pytest.raises(RunFailed):
        script.call({"num": 1})
    assert "The default of run()'s 'factor' parameter is not a valid input for its @input_schema" in caplog.messages
    assert any(m.startswith("Encountered Exception: Traceback") for m in caplog.messages)
    # The same value sent by the client is the client's mistake, as any value the schema rejects.
    with pytest.raises(BadRequest, match=r"^Invalid value for the 'factor' parameter: Invalid input data type"):
        script.call({"num": 1, "factor": None})
    assert script.call({"num": 1, "factor": 3})[0] == [1, 3]


def test_a_rejected_input_next_to_a_defaulted_parameter_is_still_a_400() -> None:
    script = load("defaults_typed.py")
    with pytest.raises(BadRequest, match=r"^Invalid value for the 'num' parameter"):
        script.call({"num": "five"})


def test_the_request_arguments_are_not_changed() -> None:
    script = load("defaults_typed.py")
    kwargs = {"num": 1}
    script.call(kwargs)
    assert kwargs == {"num": 1}  # the defaults go into a copy: `supplied` still tells the client's values


def test_async_run_gets_the_defaults() -> None:
    script = load("defaults_async.py")
    assert script.is_async
    assert asyncio.run(script.call_async({"num": 1}))[0] == [1, 10]
    assert asyncio.run(script.call_async({"num": 1, "factor": 2}))[0] == [1, 2]


@pytest.mark.slow
def test_defaults_through_a_server(serve: ServerFactory) -> None:
    server = serve("defaults_typed.py")
    answers = [
        server.post("/score", json={"num": 1}),
        server.post("/score", json={"num": 1, "color": "blue", "extra": 2}),
        server.post("/score?factor=3&color=blue", json={"num": 1}),  # a POST reads its body only
        server.get("/score?num=1&color=blue"),
        server.get("/score?num=1&factor=7"),
    ]
    assert [(answer.status_code, answer.json()) for answer in answers] == [
        (200, [1, 10, "red"]),
        (200, [1, 10, "blue"]),
        (200, [1, 10, "red"]),
        (200, [1, 10, "blue"]),
        (200, [1, 7, "red"]),
    ]
    for missing in (server.post("/score", json={"factor": 5}), server.get("/score?color=blue")):
        assert (missing.status_code, missing.json()) == (
            400,
            {"message": "A value is not provided for the 'num' parameter."},
        )
        assert missing.headers["x-ms-run-function-failed"] == "False"
    rejected = serve("defaults_rejected.py")
    failed = rejected.post("/score", json={"num": 1})
    assert (failed.status_code, failed.json()) == (500, {"message": RUN_FAILED})
    assert failed.headers["x-ms-run-function-failed"] == "True"
    assert "The default of run()'s 'factor' parameter is not a valid input for its @input_schema" in rejected.log()
    assert rejected.get("/score?num=1&factor=2").json() == [1, 2]
