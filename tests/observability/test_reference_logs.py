"""The reference's log interface: its logger names, its start-up lines, its access line, and logging.json files that
configure its loggers."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

from tests.conftest import ServerFactory
from tests.helpers import ROOT

STAMP = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}"
# The reference's loggers; ours that it has no counterpart for are children of `azmlinfsrv`, so that a logging.json
# configuring it covers every line of ours.
REFERENCE_LOGGERS = {"azmlinfsrv", "azmlinfsrv.print", "azmlinfsrv.user_script", "azmlinfsrv.swagger"}


def test_every_logger_of_ours_is_the_references_or_under_it() -> None:
    named: dict[str, str] = {}
    for path in sorted((ROOT / "scoring_runtime").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "getLogger"
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                named[f"{path.relative_to(ROOT)}:{node.lineno}"] = node.args[0].value
    ours = {where: name for where, name in named.items() if not name.startswith(("uvicorn", "gunicorn"))}
    assert REFERENCE_LOGGERS <= set(ours.values())
    assert {where: name for where, name in ours.items() if name.split(".")[0] != "azmlinfsrv"} == {}


@pytest.mark.slow
def test_start_up_and_request_lines_are_the_references(serve: ServerFactory, workers: int) -> None:
    server = serve("logs.py", workers=workers)
    assert server.post("/score", content="x").status_code == 200
    log = server.wait_for_log("azmlinfsrv - POST /score 200").replace("\r", "")
    # The launcher's lines, printed without a prefix, in the reference's order, before anything else of ours.
    assert log.startswith(
        "The environment variable 'AZUREML_MODEL_DIR' has not been set.\n"
        "Use the --model_dir command line argument to set it.\n"
        "\nAzure ML Inferencing HTTP server v1.5.1\n\n\nServer Settings\n---------------\nEntry Script Name: "
    )
    assert f"\nWorker Count: {workers}\nWorker Timeout (seconds): None\nServer Port: {server.port}\n" in log
    assert f"\n\nServer Routes\n---------------\nLiveness Probe: GET   127.0.0.1:{server.port}/\n" in log
    assert f"\nScore:          POST  127.0.0.1:{server.port}/score\n\n" in log
    assert "\nInitializing logger\n" in log
    # Our own start-up lines come after them, as lines of their own.
    assert log.index("Initializing logger") < log.index(" azmlinfsrv - scoring_runtime ")
    assert re.search(rf"^{STAMP} I \[\d+\] azmlinfsrv - Listening on 127\.0\.0\.1 port {server.port}$", log, re.M)
    for name, message in [
        ("azmlinfsrv", "Starting up app insights client"),
        ("azmlinfsrv.user_script", "Invoking user's init function"),
        ("azmlinfsrv.print", "Initializing"),
        ("azmlinfsrv.swagger", r"Swaggers are prepared for the following versions: \[.*\]\."),
        ("azmlinfsrv", "Worker with pid \\d+ ready for serving traffic"),
        ("azmlinfsrv.print", "scoring x"),
        # The access line, on `azmlinfsrv` itself: `<asctime> I [<pid>] azmlinfsrv - POST /score 200 1.234ms 4`.
        ("azmlinfsrv", r"POST /score 200 \d+\.\d{3}ms 4"),
    ]:
        assert re.search(rf"^{STAMP} I \[\d+\] {re.escape(name)} - {message}$", log, re.M), (name, message)


@pytest.mark.slow
def test_a_logging_json_for_the_azmlinfsrv_logger_takes_effect(serve: ServerFactory, tmp_path: Path) -> None:
    """A logging.json written for the reference (its loggers, `propagate: false`) applies to our lines."""
    app_root = tmp_path / "app"
    app_root.mkdir()
    config = {
        "version": 1,
        "formatters": {"mine": {"format": "MINE %(levelname)s %(name)s: %(message)s"}},
        "handlers": {"out": {"class": "logging.StreamHandler", "formatter": "mine", "stream": "ext://sys.stdout"}},
        "loggers": {
            "azmlinfsrv": {"level": "INFO", "handlers": ["out"], "propagate": False},
            "azmlinfsrv.user_script": {"level": "WARNING"},
        },
    }
    (app_root / "logging.json").write_text(json.dumps(config))
    server = serve("logs.py", cwd=app_root)
    assert server.post("/score", content="x").status_code == 200
    log = server.wait_for_log("MINE INFO azmlinfsrv: POST /score 200")
    assert re.search(r"^MINE INFO azmlinfsrv: POST /score 200 \d+\.\d{3}ms 4$", log, re.M)
    assert "\nMINE INFO azmlinfsrv.print: scoring x\n" in log
    assert "\nMINE INFO azmlinfsrv: Worker with pid " in log
    assert "Invoking user's init function" not in log  # azmlinfsrv.user_script at WARNING
    assert " azmlinfsrv - " not in log  # nothing of azmlinfsrv's also in the default format: propagate is false
    assert re.search(rf"^{STAMP} W \[\d+\] user\.model - user warning line$", log, re.M)  # the rest is unchanged


@pytest.mark.slow
def test_json_start_up_lines_are_records(serve: ServerFactory) -> None:
    server = serve("logs.py", env={"SCORING_LOG_FORMAT": "json"})
    assert server.post("/score", content="x").status_code == 200
    log = server.wait_for_log('"status":200')
    # Every line is a JSON object, the banner's too; what the script writes to stderr itself is left alone.
    records = [json.loads(line) for line in log.splitlines() if line != "to stderr"]
    shown = [record["message"] for record in records if record["logger"] == "azmlinfsrv"]
    assert shown[:4] == [
        "The environment variable 'AZUREML_MODEL_DIR' has not been set.",
        "Use the --model_dir command line argument to set it.",
        "Azure ML Inferencing HTTP server v1.5.1",
        "Server Settings",
    ]
    assert f"Server Port: {server.port}" in shown and "Initializing logger" in shown
    (access,) = [record for record in records if "method" in record]
    assert (access["logger"], access["path"], access["status"]) == ("azmlinfsrv", "/score", 200)


@pytest.mark.slow
def test_a_logging_json_naming_the_references_classes_works_without_it(serve: ServerFactory, tmp_path: Path) -> None:
    """The reference's own examples name its formatter and filter classes; with it not installed, ours stand in."""
    app_root = tmp_path / "app"
    app_root.mkdir()
    reference = "azureml_inference_server_http.log_config"
    config = {
        "version": 1,
        "formatters": {
            "azmlinfsrv": {
                "class": f"{reference}.AMLLogFormatter",
                "format": "[%(levelname)s] [%(process)d] %(name)s %(asctime)s | %(message)s",
            }
        },
        "filters": {"probe": {"()": f"{reference}.RootAccessFilter"}},
        "handlers": {
            "out": {"class": "logging.StreamHandler", "formatter": "azmlinfsrv", "stream": "ext://sys.stdout"}
        },
        "loggers": {"azmlinfsrv": {"level": "INFO", "handlers": ["out"], "propagate": False}},
    }
    (app_root / "logging.json").write_text(json.dumps(config))
    server = serve("logs.py", env={"AML_APP_ROOT": str(app_root)})
    assert server.post("/score", content="x").status_code == 200
    log = server.wait_for_log("| POST /score 200")
    stamp = r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2},\d{3}"
    assert re.search(rf"^\[INFO\] \[\d+\] azmlinfsrv {stamp} \| Starting up app insights client$", log, re.M)
