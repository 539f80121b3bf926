"""SCORING_LOG_FORMAT=json: one JSON object per line, with the request id on every line a request causes."""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

import pytest

from tests.conftest import ServerFactory


def _records(log: str) -> list[dict[str, Any]]:
    # Every line is a JSON object (gunicorn's and uvicorn's lines, print() included), except what the script itself
    # writes to sys.stderr, which is left alone.
    return [json.loads(line) for line in log.splitlines() if line.strip() and line != "to stderr"]


@pytest.mark.slow
def test_json_lines(serve: ServerFactory, workers: int) -> None:
    server = serve("logs.py", workers=workers, env={"SCORING_LOG_FORMAT": "json"})
    response = server.post("/score", content="x", headers={"x-request-id": "req-1"})
    assert response.status_code == 200
    refused = server.request("DELETE", "/score", headers={"x-request-id": "req-2"})
    assert refused.status_code == 405
    server.wait_for_log('"status":405')
    # Under gunicorn the first answer can come before the second worker has logged that it is ready.
    deadline = time.monotonic() + 20
    while server.log().count("ready for serving traffic") < workers and time.monotonic() < deadline:
        time.sleep(0.05)

    records = _records(server.log())
    for record in records:
        assert {"timestamp", "level", "logger", "message", "pid", "request_id"} <= record.keys()
        assert record["timestamp"].endswith("Z") and "T" in record["timestamp"]
    ready = [r for r in records if "ready for serving traffic" in r["message"]]
    assert len(ready) == workers and all(r["request_id"] is None for r in ready)

    by_request = [r for r in records if r["request_id"] == "req-1"]
    user_lines = {(r["logger"], r["level"], r["message"]) for r in by_request}
    # The user's logging and print() from run(), on its run thread, carry the id of the request being scored.
    assert ("user.model", "WARNING", "user warning line") in user_lines
    assert ("azmlinfsrv.print", "INFO", "scoring x") in user_lines
    # The access line is on `azmlinfsrv` itself, as in the reference.
    (access,) = [r for r in by_request if r["logger"] == "azmlinfsrv" and "method" in r]
    assert (access["method"], access["path"], access["status"], access["size"]) == ("POST", "/score", 200, 4)
    assert isinstance(access["duration_ms"], float) and access["duration_ms"] >= 0
    assert access["message"].startswith("POST /score 200 ")
    (refusal,) = [r for r in records if r["request_id"] == "req-2" and r["logger"] == "azmlinfsrv" and "method" in r]
    assert (refusal["method"], refusal["path"], refusal["status"]) == ("DELETE", "/score", 405)


@pytest.mark.slow
def test_json_tracebacks_stay_on_one_line(serve: ServerFactory) -> None:
    server = serve("raises.py", env={"SCORING_LOG_FORMAT": "json"})
    assert server.post("/score", content="x", headers={"x-request-id": "boom"}).status_code == 500
    server.wait_for_log('"status":500')
    (failure,) = [r for r in _records(server.log()) if r["level"] == "ERROR"]
    # The reference's message, traceback included, is one line of JSON.
    assert failure["request_id"] == "boom"
    assert failure["message"].startswith("Encountered Exception: Traceback (most recent call last):")
    assert failure["message"].rstrip().endswith("ZeroDivisionError: division by zero")


@pytest.mark.slow
def test_text_stays_the_default(serve: ServerFactory) -> None:
    server = serve("logs.py")
    server.post("/score", content="x")
    log = server.wait_for_log("POST /score 200")
    assert " W [" in log and "user.model - user warning line" in log
    with pytest.raises(json.JSONDecodeError):
        json.loads(log.splitlines()[0])


def test_json_formatter_keeps_the_traceback_apart() -> None:
    from scoring_runtime.observability.log import JSONFormatter, request_id

    try:
        raise ValueError("bad value")
    except ValueError:
        record = logging.getLogger("t").makeRecord(
            "t", logging.ERROR, __file__, 1, "failed %s", ("here",), sys.exc_info()
        )
    token = request_id.set("abc")
    try:
        line = JSONFormatter().format(record)
    finally:
        request_id.reset(token)
    assert "\n" not in line
    parsed = json.loads(line)
    assert (parsed["message"], parsed["level"], parsed["request_id"]) == ("failed here", "ERROR", "abc")
    assert parsed["exception"].endswith("ValueError: bad value")
