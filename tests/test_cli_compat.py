"""azmlinfsrv's command line and boolean variables: a container that started under it starts here, meaning the same."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest

from scoring_runtime.cli import REFERENCE_FLAGS, build_parser, expand_abbreviations, settings_from
from scoring_runtime.config import ENV_NAMES, Settings, load_settings
from scoring_runtime.errors import ConfigError
from tests.conftest import ServerFactory
from tests.helpers import NO_TELEMETRY_EXPORT, ROOT

KEY = "01234567-89ab-cdef-0123-456789abcdef"
REFERENCE_ARGS = (
    ROOT / "benchmarks/.venv-ref/lib/python3.11/site-packages/azureml_inference_server_http/args.py"
)  # fmt: skip


@pytest.fixture
def clean(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return Path.cwd()  # tmp_path with any symlink resolved, as paths from flags are


@pytest.mark.skipif(not REFERENCE_ARGS.exists(), reason="the reference's virtualenv is not installed (make bench)")
def test_the_reference_flags_are_those_of_its_parser() -> None:
    calls = [node for node in ast.walk(ast.parse(REFERENCE_ARGS.read_text())) if isinstance(node, ast.Call)]
    declared = {
        arg.value
        for call in calls
        if isinstance(call.func, ast.Attribute) and call.func.attr == "add_argument"
        for arg in call.args
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str)
    }
    assert declared | {"--help"} == set(REFERENCE_FLAGS)


@pytest.mark.parametrize(
    ("argv", "field", "value"),
    [
        (["--entry_script", "score.py"], "entry_script", "{cwd}/score.py"),
        (["--model_dir", "./m"], "model_dir", "./m"),
        (["--appinsights_instrumentation_key", KEY], "app_insights_key", KEY),
        (["--appinsights_instrumentation_key", KEY], "app_insights_enabled", True),
        (["--appinsights-instrumentation-key", KEY], "app_insights_enabled", True),
        (["--port", "6000"], "port", 6000),
        (["--health_port", "6001"], "health_port", 6001),
        (["--worker_count", "2"], "worker_count", 2),
        (["--access_control_allow_origins", "a.com, b.com"], "cors_origins", ("a.com", "b.com")),
        (["--config_file", "c.json"], "config_file", "{cwd}/c.json"),
        (["--rest"], "transport_protocol", "rest"),
        ([], "transport_protocol", "grpc"),
    ],
)
def test_each_reference_flag_sets_its_setting(clean: Path, argv: list[str], field: str, value: Any) -> None:
    (clean / "c.json").write_text("{}")
    settings, _ = settings_from(argv)
    assert getattr(settings, field) == (value.format(cwd=clean) if isinstance(value, str) else value)


def test_every_prefix_the_reference_accepts_means_the_same_flag() -> None:
    parser = build_parser()
    checked = 0
    for flag in REFERENCE_FLAGS:
        for end in range(3, len(flag) + 1):
            prefix = flag[:end]
            if [other for other in REFERENCE_FLAGS if other.startswith(prefix)] != [flag] or flag == "--help":
                continue  # ambiguous for the reference too; --help would exit
            assert expand_abbreviations(parser, [prefix, "v"]) == [flag, "v"], prefix
            assert expand_abbreviations(parser, [f"{prefix}=v"]) == [f"{flag}=v"], prefix
            checked += 1
    assert checked > 100
    # Ours alone share these with flags of their own: `--w` could be --worker_timeout, `--m` --metrics.
    assert expand_abbreviations(parser, ["--w", "2", "--m", "d", "--hea", "1"]) == [
        "--worker_count", "2", "--model_dir", "d", "--health_port", "1",
    ]  # fmt: skip


def test_prefixes_of_our_own_flags_and_what_is_left_alone() -> None:
    parser = build_parser()
    assert expand_abbreviations(parser, ["--worker-t", "5", "--entry-s=x"]) == [
        "--worker_timeout",
        "5",
        "--entry_script=x",
    ]
    assert expand_abbreviations(parser, ["--port", "1", "-h", "--", "--w"]) == ["--port", "1", "-h", "--", "--w"]


@pytest.mark.parametrize("argv", [["--bogus"], ["--he", "1"], ["--worker-", "1"], ["--rest", "rest"]])
def test_unknown_and_ambiguous_flags_are_usage_errors(clean: Path, argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        settings_from(argv)
    assert exited.value.code == 2


def test_abbreviated_command_line_in_full(clean: Path) -> None:
    settings, _ = settings_from(["--entry", "s.py", "--model", "m", "--w", "2", "--acc", "a.com", "--ap", KEY, "--r"])
    assert (settings.entry_script, settings.model_dir, settings.worker_count) == (str(clean / "s.py"), "m", 2)
    assert (settings.cors_origins, settings.app_insights_enabled, settings.transport_protocol) == (
        ("a.com",), True, "rest",
    )  # fmt: skip


def test_kserves_flags_for_a_custom_runtime_are_understood(clean: Path) -> None:
    # What KServe's ServingRuntime of deploy/kserve passes, as it passes it to its own Python model servers.
    settings, _ = settings_from(["--model_dir", "/mnt/models", "--http_port", "8080", "--model_name", "iris"])
    assert (settings.model_dir, settings.port, settings.model_name) == ("/mnt/models", 8080, "iris")
    assert settings_from(["--http-port=8081"])[0].port == 8081


def test_help_shows_the_reference_flags(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        settings_from(["--help"])
    shown = capsys.readouterr().out
    assert exited.value.code == 0
    assert all(flag in shown for flag in REFERENCE_FLAGS)


def load(environ: dict[str, str], tmp_path: Path) -> tuple[Settings, list[str]]:
    return load_settings({}, environ=environ, cwd=tmp_path)


ODD = "notgood"
# The reference's boolean variables: how it reads them, and the setting that holds each here.
REFERENCE_BOOLEANS = {
    "SERVER_VERSION_LOG_RESPONSE_ENABLED": "server_version_header",  # launcher: `true` in any case
    "WORKER_PRELOAD": "worker_preload",  # launcher: `true` in any case
    "SEPERATE_HEALTH_ENDPOINT": "separate_health_endpoint",  # launcher: exactly `true`
    "AML_APP_INSIGHTS_ENABLED": "app_insights_enabled",  # launcher: exactly `true`
    "APP_INSIGHTS_LOG_RESPONSE_ENABLED": "app_insights_log_response",  # server settings: pydantic's bool
    "AML_MDC_STORAGE_ENABLED": "mdc_storage_enabled",  # server settings: pydantic's bool
}


@pytest.mark.parametrize("variable", sorted(REFERENCE_BOOLEANS))
@pytest.mark.parametrize("value", [ODD, "2", " true"])
def test_an_odd_boolean_is_false_with_a_warning(tmp_path: Path, variable: str, value: str) -> None:
    settings, warnings = load({variable: value, "AML_APP_INSIGHTS_KEY": KEY}, tmp_path)
    assert getattr(settings, REFERENCE_BOOLEANS[variable]) is False
    assert [warning for warning in warnings if warning.startswith(f"{variable}: {value!r} is read as false: ")]


@pytest.mark.parametrize(
    ("variable", "value", "expected", "warned"),
    [
        ("SERVER_VERSION_LOG_RESPONSE_ENABLED", "TRUE", True, False),
        ("SERVER_VERSION_LOG_RESPONSE_ENABLED", "False", False, False),
        ("SERVER_VERSION_LOG_RESPONSE_ENABLED", "1", False, True),  # the reference takes only `true`
        ("WORKER_PRELOAD", "True", True, False),
        ("WORKER_PRELOAD", "yes", False, True),
        ("WORKER_PRELOAD", "0", False, False),
        ("SEPERATE_HEALTH_ENDPOINT", "true", True, False),
        ("SEPERATE_HEALTH_ENDPOINT", "True", False, True),  # exactly `true` there
        ("SEPERATE_HEALTH_ENDPOINT", "false", False, False),
        ("AML_APP_INSIGHTS_ENABLED", "true", True, False),
        ("AML_APP_INSIGHTS_ENABLED", "TRUE", False, True),
        ("APP_INSIGHTS_LOG_RESPONSE_ENABLED", "Y", True, False),
        ("APP_INSIGHTS_LOG_RESPONSE_ENABLED", "off", False, False),
        ("AML_MDC_STORAGE_ENABLED", "t", True, False),
        ("AML_MDC_STORAGE_ENABLED", "ON", True, False),
    ],
)
def test_booleans_are_read_as_the_reference_reads_them(
    tmp_path: Path, variable: str, value: str, expected: bool, warned: bool
) -> None:
    settings, warnings = load({variable: value, "AML_APP_INSIGHTS_KEY": KEY}, tmp_path)
    assert getattr(settings, REFERENCE_BOOLEANS[variable]) is expected
    assert any(warning.startswith(f"{variable}: ") for warning in warnings) is warned


def test_separate_health_endpoint_needs_exactly_true(tmp_path: Path) -> None:
    assert load({"SEPERATE_HEALTH_ENDPOINT": "true"}, tmp_path)[0].health_port == 5000
    assert load({"SEPERATE_HEALTH_ENDPOINT": "TRUE"}, tmp_path)[0].health_port is None


@pytest.mark.parametrize("variable", ["SCORING_METRICS", "SCORING_AUTH_SWAGGER"])
def test_our_own_booleans_stay_strict(tmp_path: Path, variable: str) -> None:
    # A typo in a switch of ours (authentication among them) must not silently turn it off.
    with pytest.raises(ConfigError, match=f"^{variable}: expected true or false, got 'notgood'$"):
        load({variable: ODD}, tmp_path)


def test_settings_not_acted_on_are_named_once(tmp_path: Path) -> None:
    environ = {
        "AML_APP_INSIGHTS_ENABLED": "true", "AML_APP_INSIGHTS_KEY": KEY, "AML_MDC_STORAGE_ENABLED": "true",
        "APP_INSIGHTS_LOG_RESPONSE_ENABLED": "false", "AZUREML_DEBUG_PORT": "5678", "TRANSPORT_PROTOCOL": "rest",
    }  # fmt: skip
    settings, warnings = load(environ, tmp_path)
    assert settings.debug_port == "5678"
    assert warnings == [
        "AML_MDC_STORAGE_ENABLED=true is accepted but not acted on: model data collection is not implemented",
        "AZUREML_DEBUG_PORT=5678 is accepted but not acted on: debugpy is not implemented",
        "TRANSPORT_PROTOCOL=rest is accepted but not acted on: nothing reads it, as in azmlinfsrv",
    ]
    assert load({"TRANSPORT_PROTOCOL": "grpc", "AML_APP_INSIGHTS_KEY": KEY}, tmp_path)[1] == []


@pytest.mark.parametrize(
    ("environ", "cli", "problem"),
    [
        ({"AML_APP_INSIGHTS_ENABLED": "true"}, {}, "is not set"),
        ({"AML_APP_INSIGHTS_ENABLED": "true", "AML_APP_INSIGHTS_KEY": "abc"}, {}, "is not a valid instrumentation key"),
        ({}, {"app_insights_key": KEY + "0"}, "is not a valid instrumentation key"),
    ],
)
def test_app_insights_without_a_valid_key_is_off(
    tmp_path: Path, environ: dict[str, str], cli: dict[str, str], problem: str
) -> None:
    settings, warnings = load_settings(cli, environ=environ, cwd=tmp_path)
    assert settings.app_insights_enabled is False
    assert warnings == [f"AML_APP_INSIGHTS_ENABLED is read as false: AML_APP_INSIGHTS_KEY {problem}"]


def test_the_key_stays_out_of_logs(tmp_path: Path) -> None:
    settings, warnings = load_settings({"app_insights_key": KEY}, environ={}, cwd=tmp_path)
    assert KEY not in repr(settings) and not any(KEY in warning for warning in warnings)


@pytest.mark.slow
def test_a_reference_command_line_and_odd_booleans_start_a_server(serve: ServerFactory, tmp_path: Path) -> None:
    (tmp_path / "c.json").write_text("{}")
    odd = {variable: ODD for variable in REFERENCE_BOOLEANS}
    server = serve(
        "init_pid.py", "--model", str(tmp_path), "--appinsights_instrumentation_key", KEY, "--rest",
        "--access_control_allow_origins", "https://a.com", "--config_file", str(tmp_path / "c.json"),
        workers=2, env=odd | NO_TELEMETRY_EXPORT,
    )  # fmt: skip
    response = server.post("/score", content="")
    body = response.json()
    assert body["init_pid"] == body["pid"] != server.process.pid  # WORKER_PRELOAD=notgood: no preload
    assert "x-ms-server-version" not in response.headers  # SERVER_VERSION_LOG_RESPONSE_ENABLED=notgood: off
    log = server.log()
    assert f"Listening on 127.0.0.1 port {server.port}\n" in log.replace("\r", "")  # no health port 5000
    for variable in REFERENCE_BOOLEANS:
        if variable != "AML_APP_INSIGHTS_ENABLED":  # the flag sets it, as the reference's does
            assert log.count(f"{variable}: '{ODD}' is read as false") == 1, variable
    cors = server.request(
        "OPTIONS", "/score", headers={"Origin": "https://a.com", "Access-Control-Request-Method": "POST"}
    )
    assert cors.headers["access-control-allow-origin"] == "https://a.com"
