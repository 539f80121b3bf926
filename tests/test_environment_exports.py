"""The environment score.py sees: the variables azmlinfsrv's launcher exports, with the values it gives them."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from scoring_runtime._version import __version__
from scoring_runtime.cli import settings_from
from scoring_runtime.config import ENV_NAMES, Settings, load_settings
from scoring_runtime.contract.loading import export_environment, script_environment
from tests.conftest import ServerFactory
from tests.helpers import NO_TELEMETRY_EXPORT, ROOT, SCRIPTS

OURS = f"scoring_runtime/{__version__}"
KEY = "01234567-89ab-cdef-0123-456789ABCDEF"
# What tests/scripts/env_exports.py reports.
NAMES = [
    "AML_APP_INSIGHTS_ENABLED", "AML_APP_INSIGHTS_KEY", "AML_APP_ROOT", "AZUREML_ENTRY_SCRIPT", "AZUREML_MODEL_DIR",
    "WORKER_COUNT", "SERVER_PORT", "HEALTH_PORT", "HTTP_X_MS_SERVER_VERSION", "AML_CORS_ORIGINS",
    "AZUREML_CONFIG_FILE", "TRANSPORT_PROTOCOL",
]  # fmt: skip
REFERENCE_PYTHON = ROOT / "benchmarks" / ".venv-ref" / "bin" / "python"


@pytest.fixture
def clean(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No setting in the environment, and an empty working directory (the default app root)."""
    for name in {*ENV_NAMES, *NAMES}:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return Path.cwd()  # tmp_path with any symlink resolved, as the app root is


def exported(argv: list[str]) -> dict[str, str]:
    settings, _ = settings_from(argv)
    return script_environment(settings)


def test_defaults_are_the_reference_launchers(clean: Path) -> None:
    assert exported([]) == {
        "AML_APP_ROOT": str(clean),
        "WORKER_COUNT": "1",
        "SERVER_PORT": "5001",
        "HEALTH_PORT": "5001",
        "AML_APP_INSIGHTS_ENABLED": "false",
        "TRANSPORT_PROTOCOL": "grpc",
        "HTTP_X_MS_SERVER_VERSION": OURS,  # the header value we send, not azmlinfsrv/1.5.1
    }  # AML_APP_INSIGHTS_KEY, AZUREML_MODEL_DIR and the rest stay unset, so os.getenv(name, default) still works


def test_every_flag_is_exported_as_the_reference_exports_it(clean: Path) -> None:
    (clean / "real").mkdir()
    (clean / "real" / "score.py").write_text("")
    (clean / "link").symlink_to(clean / "real")
    (clean / "settings.json").write_text("{}")
    environment = exported(
        ["--entry_script", "link/score.py", "--model_dir", "./models", "--appinsights_instrumentation_key", KEY,
         "--port", "6000", "--worker_count", "3", "--access_control_allow_origins", "a.com,  b.com",
         "--config_file", "settings.json", "--rest"]
    )  # fmt: skip
    assert environment == {
        "AML_APP_ROOT": str(clean),
        "AZUREML_ENTRY_SCRIPT": str(clean / "real" / "score.py"),  # the realpath, as the reference's
        "AZUREML_MODEL_DIR": "./models",  # verbatim
        "AML_APP_INSIGHTS_KEY": KEY,
        "AML_APP_INSIGHTS_ENABLED": "true",  # the flag turns it on; the key is valid
        "SERVER_PORT": "6000",
        "HEALTH_PORT": "6000",
        "WORKER_COUNT": "3",
        "AML_CORS_ORIGINS": "a.com,  b.com",  # as given
        "AZUREML_CONFIG_FILE": str(clean / "settings.json"),
        "TRANSPORT_PROTOCOL": "rest",
        "HTTP_X_MS_SERVER_VERSION": OURS,
    }


def test_health_port_and_the_server_version_switch(clean: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEPERATE_HEALTH_ENDPOINT", "true")
    monkeypatch.setenv("SERVER_VERSION_LOG_RESPONSE_ENABLED", "false")
    monkeypatch.setenv("AML_CORS_ORIGINS", "x.com,y.com")
    environment = exported([])
    assert environment["HEALTH_PORT"] == "5000" and environment["AML_CORS_ORIGINS"] == "x.com,y.com"
    assert "HTTP_X_MS_SERVER_VERSION" not in environment  # no header sent, nothing exported
    assert exported(["--health_port", "5002"])["HEALTH_PORT"] == "5002"


@pytest.mark.parametrize(
    ("environ", "enabled"),
    [
        ({"AML_APP_INSIGHTS_ENABLED": "true", "AML_APP_INSIGHTS_KEY": KEY}, "true"),
        ({"AML_APP_INSIGHTS_ENABLED": "true", "AML_APP_INSIGHTS_KEY": "not-a-uuid"}, "false"),
        ({"AML_APP_INSIGHTS_ENABLED": "true"}, "false"),
        ({"AML_APP_INSIGHTS_ENABLED": "True", "AML_APP_INSIGHTS_KEY": KEY}, "false"),  # exactly `true` only
        ({"AML_APP_INSIGHTS_ENABLED": "1", "AML_APP_INSIGHTS_KEY": KEY}, "false"),
        ({"AML_APP_INSIGHTS_KEY": KEY}, "false"),
    ],
)
def test_app_insights_enabled_is_exported_as_the_launcher_decides(
    clean: Path, monkeypatch: pytest.MonkeyPatch, environ: dict[str, str], enabled: str
) -> None:
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    environment = exported([])
    assert environment["AML_APP_INSIGHTS_ENABLED"] == enabled
    assert environment.get("AML_APP_INSIGHTS_KEY") == environ.get("AML_APP_INSIGHTS_KEY")


def test_export_leaves_unset_variables_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AZUREML_MODEL_DIR", raising=False)
    monkeypatch.setenv("HTTP_X_MS_SERVER_VERSION", "set-by-the-image")
    export_environment(Settings(app_root=tmp_path, server_version_header=False, worker_count=2))
    assert "AZUREML_MODEL_DIR" not in os.environ
    assert os.environ["HTTP_X_MS_SERVER_VERSION"] == "set-by-the-image"
    assert (os.environ["AML_APP_ROOT"], os.environ["WORKER_COUNT"]) == (str(tmp_path), "2")
    assert os.environ["AML_APP_INSIGHTS_ENABLED"] == "false"


def test_settings_made_in_code_export_their_origins(tmp_path: Path) -> None:
    settings, _ = load_settings({"cors_origins": ["a.com", "b.com"]}, environ={}, cwd=tmp_path)
    assert script_environment(settings)["AML_CORS_ORIGINS"] == "a.com, b.com"
    assert script_environment(Settings(app_root=tmp_path, cors_origins=("c.com",)))["AML_CORS_ORIGINS"] == "c.com"


def reference_environment(argv: list[str], environ: dict[str, str], cwd: Path) -> dict[str, str]:
    """What azmlinfsrv 1.5.1's launcher leaves in os.environ for `argv`, run by its own interpreter."""
    program = (
        "import json, os, sys\n"
        "from azureml_inference_server_http import amlserver\n"
        "sys.argv = ['azmlinfsrv', *json.loads(sys.argv[1])]\n"
        "amlserver.merge_configuration(amlserver.parse_arguments())\n"
        "amlserver.validate_environment_variables()\n"
        "print(json.dumps(dict(os.environ)))\n"
    )
    base = {key: value for key, value in os.environ.items() if key not in {*ENV_NAMES, *NAMES}}
    done = subprocess.run(
        [str(REFERENCE_PYTHON), "-c", program, json.dumps(argv)],
        env={**base, **environ},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    seen: dict[str, str] = json.loads(done.stdout.splitlines()[-1])
    return {name: seen[name] for name in NAMES if name in seen}


@pytest.mark.slow
@pytest.mark.skipif(not REFERENCE_PYTHON.exists(), reason="the reference's virtualenv is not installed (make bench)")
@pytest.mark.parametrize(
    ("argv", "environ"),
    [
        ([], {}),
        (["--model_dir", "m", "--appinsights_instrumentation_key", KEY, "--port", "6000", "--worker_count", "2",
          "--access_control_allow_origins", "a.com, b.com", "--config_file", "c.json", "--rest"], {}),
        (["--appinsights_instrumentation_key", "bad"], {"AML_CORS_ORIGINS": "x.com,y.com", "AZUREML_MODEL_DIR": "/m"}),
        ([], {"AML_APP_INSIGHTS_ENABLED": "true", "AML_APP_INSIGHTS_KEY": KEY, "WORKER_COUNT": "4"}),
        ([], {"AML_APP_INSIGHTS_ENABLED": "yes", "AML_APP_INSIGHTS_KEY": KEY}),
        (["--health_port", "5002"], {"SEPERATE_HEALTH_ENDPOINT": "true", "SERVER_VERSION_LOG_RESPONSE_ENABLED": "no"}),
        (["--entry", "other.py", "--w", "3", "--m", "m2"], {"SERVER_VERSION_LOG_RESPONSE_ENABLED": "TRUE"}),
    ],
)  # fmt: skip
def test_the_same_values_as_the_reference(
    clean: Path, monkeypatch: pytest.MonkeyPatch, argv: list[str], environ: dict[str, str]
) -> None:
    (clean / "c.json").write_text("{}")
    argv = argv if "--entry" in argv else ["--entry_script", "score.py", *argv]  # the reference requires one
    theirs = reference_environment(argv, environ, clean)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    ours = exported(argv)
    if "HTTP_X_MS_SERVER_VERSION" in theirs:
        theirs["HTTP_X_MS_SERVER_VERSION"] = OURS
    # Variables the launcher leaves as they were are in `ours` only when the settings have them, as in `theirs`.
    assert {name: ours[name] for name in NAMES if name in ours} == theirs


def wait_for_files(folder: Path, count: int, timeout: float = 60.0) -> list[dict[str, str | None]]:
    deadline = time.monotonic() + timeout
    while len(found := sorted(folder.glob("*.json"))) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    return [json.loads(path.read_text()) for path in found]


@pytest.mark.slow
def test_every_worker_sees_them_before_init(serve: ServerFactory, workers: int, tmp_path: Path) -> None:
    seen = tmp_path / "seen"
    seen.mkdir()
    server = serve(
        "env_exports.py", "--model_dir", "./my/dir", "--appinsights_instrumentation_key", KEY, "--rest",
        "--access_control_allow_origins", "a.com, b.com", workers=workers,
        env={"ENV_EXPORTS_DIR": str(seen)} | NO_TELEMETRY_EXPORT,
    )  # fmt: skip
    expected = {
        "AML_APP_INSIGHTS_ENABLED": "true",
        "AML_APP_INSIGHTS_KEY": KEY,
        "AML_APP_ROOT": str(ROOT),
        "AZUREML_ENTRY_SCRIPT": str(SCRIPTS / "env_exports.py"),
        "AZUREML_MODEL_DIR": "./my/dir",
        "WORKER_COUNT": str(workers),
        "SERVER_PORT": str(server.port),
        "HEALTH_PORT": str(server.port),
        "HTTP_X_MS_SERVER_VERSION": OURS,
        "AML_CORS_ORIGINS": "a.com, b.com",
        "AZUREML_CONFIG_FILE": None,
        "TRANSPORT_PROTOCOL": "rest",
    }
    assert wait_for_files(seen, workers) == [expected] * workers  # in init(), in each worker
    response = server.post("/score", content="")
    assert response.json()["env"] == expected  # and in run()
    assert response.headers["x-ms-server-version"] == expected["HTTP_X_MS_SERVER_VERSION"]
    log = server.log()
    # Logged once, by the process that reads the settings, however many workers there are.
    assert log.count("TRANSPORT_PROTOCOL=rest is accepted but not acted on") == 1


@pytest.mark.slow
def test_defaults_in_a_real_server(serve: ServerFactory, tmp_path: Path) -> None:
    server = serve("env_exports.py", env={"SERVER_VERSION_LOG_RESPONSE_ENABLED": "false"})
    response = server.post("/score", content="")
    env = response.json()["env"]
    assert (env["AML_APP_INSIGHTS_ENABLED"], env["TRANSPORT_PROTOCOL"], env["WORKER_COUNT"]) == ("false", "grpc", "1")
    unset = ("AML_APP_INSIGHTS_KEY", "AZUREML_MODEL_DIR", "HTTP_X_MS_SERVER_VERSION", "AML_CORS_ORIGINS")
    assert [env[name] for name in unset] == [None] * len(unset)
    assert "x-ms-server-version" not in response.headers
    assert "not acted on" not in server.log()
