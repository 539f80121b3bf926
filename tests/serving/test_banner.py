"""The start-up lines azmlinfsrv prints, byte for byte, compared with what its own launcher prints."""

from __future__ import annotations

import io
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from scoring_runtime._version import __version__
from scoring_runtime.cli import settings_from
from scoring_runtime.config import ENV_NAMES
from scoring_runtime.serving import banner
from tests.helpers import ROOT, clean_env

REFERENCE_PYTHON = ROOT / "benchmarks/.venv-ref/bin/python"
KEY = "01234567-89ab-cdef-0123-456789abcdef"
# Everything the reference's run() does before it starts gunicorn (logging.json and PYTHONPATH lines aside).
REFERENCE_LAUNCHER = """
import sys
from azureml_inference_server_http import amlserver
args = amlserver.parse_arguments()
amlserver.merge_configuration(args)
amlserver.validate_environment_variables()
amlserver.print_server_info()
amlserver.print_server_settings()
amlserver.print_routes()
"""

CASES = {
    "defaults": ((), {}),
    "everything": (
        ("--model_dir", "models", "--worker_count", "3", "--appinsights_instrumentation_key", KEY, "--port", "8080",
         "--access_control_allow_origins", "https://a.com, https://b.com", "--config_file", "c.json"),
        {"WORKER_TIMEOUT": "60"},
    ),
    "invalid key": (("--model_dir", "/m"), {"AML_APP_INSIGHTS_ENABLED": "true", "AML_APP_INSIGHTS_KEY": "not-a-key"}),
    "health endpoint": (("--health_port", "9000"), {"SEPERATE_HEALTH_ENDPOINT": "true", "AZUREML_MODEL_DIR": ""}),
    "no version header": ((), {"SERVER_VERSION_LOG_RESPONSE_ENABLED": "false"}),
}  # fmt: skip


@pytest.fixture
def app_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("HTTP_X_MS_SERVER_VERSION", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "c.json").write_text("{}")
    return Path.cwd()  # with any symlink resolved, as the paths both launchers print are


@pytest.mark.skipif(not REFERENCE_PYTHON.exists(), reason="the reference's virtualenv is not installed (make bench)")
@pytest.mark.parametrize("case", CASES)
def test_the_lines_are_the_reference_launchers(case: str, app_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    flags, env = CASES[case]
    argv = ("--entry_script", "score.py", *flags)
    printed = subprocess.run(
        [str(REFERENCE_PYTHON), "-c", REFERENCE_LAUNCHER, *argv],
        capture_output=True, text=True, env=clean_env(**env), cwd=app_root, timeout=60, check=True,
    ).stdout  # fmt: skip
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings, warnings = settings_from(argv)
    # The one value that differs on purpose: the version header names the server that answers (compatibility.md).
    expected = printed.replace("azmlinfsrv/1.5.1", f"scoring_runtime/{__version__}")
    assert "".join(f"{line}\n" for line in banner.reference_lines(settings, warnings)) == expected
    assert KEY not in expected


def test_text_lines_are_printed_and_json_lines_logged(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    stdout = io.StringIO()
    monkeypatch.setattr(sys, "stdout", stdout)
    banner.show(["", "Server Settings", "---------------", "Server Port: 5001"], "text")
    assert stdout.getvalue() == "\nServer Settings\n---------------\nServer Port: 5001\n"
    with caplog.at_level(logging.INFO, "azmlinfsrv"):
        banner.show(["", "Server Settings", "---------------", "Server Port: 5001"], "json")
    assert [(r.name, r.levelname, r.getMessage()) for r in caplog.records] == [
        ("azmlinfsrv", "INFO", "Server Settings"),
        ("azmlinfsrv", "INFO", "Server Port: 5001"),
    ]
