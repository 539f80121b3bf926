from __future__ import annotations

import json
from pathlib import Path

import pytest

from scoring_runtime.config import FIELDS, Settings, load_settings
from scoring_runtime.errors import ConfigError


def test_defaults(tmp_path: Path) -> None:
    settings, warnings = load_settings({}, environ={}, cwd=tmp_path)
    assert settings == Settings(app_root=tmp_path)
    assert (settings.port, settings.worker_count, settings.scoring_timeout_ms) == (5001, 1, 3_600_000)
    assert (settings.service_name, settings.service_version, settings.log_level) == ("ML service", "1.0", "INFO")
    assert settings.entry_script is None and settings.health_port is None and warnings == []


def test_every_setting_has_an_environment_name_and_a_doc() -> None:
    envs = [spec.metadata["env"] for spec in FIELDS.values()]
    assert len(envs) == len(set(envs))
    assert all(spec.metadata["doc"] for spec in FIELDS.values())
    required = {
        "AML_APP_ROOT", "AZUREML_ENTRY_SCRIPT", "AZUREML_SOURCE_DIRECTORY", "AZUREML_MODEL_DIR", "AZUREML_CONFIG_FILE",
        "SERVICE_NAME", "SERVICE_VERSION", "SERVICE_PATH_PREFIX", "SCORING_TIMEOUT_MS", "WORKER_COUNT",
        "WORKER_TIMEOUT", "WORKER_PRELOAD", "AZUREML_LOG_LEVEL", "AML_CORS_ORIGINS",
    }  # fmt: skip
    assert required <= set(envs)


def test_precedence_cli_over_env_over_file_over_default(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(
        json.dumps(
            {"SCORING_TIMEOUT_MS": 100, "SERVICE_NAME": "from-file", "WORKER_TIMEOUT": "7", "SERVICE_VERSION": 2}
        )
    )
    environ = {"SCORING_TIMEOUT_MS": "200", "SERVICE_NAME": "from-env"}
    settings, _ = load_settings({"scoring_timeout_ms": "300"}, environ=environ, cwd=tmp_path)
    assert settings.scoring_timeout_ms == 300  # CLI
    assert settings.service_name == "from-env"  # env over file
    assert settings.worker_timeout == 7  # file over default
    assert settings.service_version == "2"
    assert settings.worker_count == 1  # default
    assert settings.config_file == str(tmp_path / "config.json")


def test_config_file_next_to_entry_script_and_explicit_file(tmp_path: Path) -> None:
    app = tmp_path / "app"
    app.mkdir()
    (app / "config.json").write_text(json.dumps({"SERVICE_NAME": "beside-script"}))
    settings, _ = load_settings({"entry_script": str(app / "score.py")}, environ={}, cwd=tmp_path)
    assert settings.service_name == "beside-script"

    other = tmp_path / "other.json"
    other.write_text(json.dumps({"SERVICE_NAME": "explicit", "AZUREML_ENTRY_SCRIPT": "score.py"}))
    settings, _ = load_settings({"config_file": str(other)}, environ={}, cwd=tmp_path)
    assert settings.service_name == "explicit"
    # An entry script from the file is relative to the app root.
    assert settings.entry_script_path() == tmp_path / "score.py"


def test_unknown_config_keys_are_reported_not_fatal(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"EXTRA_KEY": 1, "AML_CORS_ORIGINS": "a, b"}))
    settings, warnings = load_settings({}, environ={}, cwd=tmp_path)
    assert settings.cors_origins == ("a", "b")  # read from the file, unlike the reference
    assert warnings == [f"Ignoring unknown key 'EXTRA_KEY' in config file {tmp_path / 'config.json'}"]


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"SCORING_TIMEOUT_MS": "abc"}, "SCORING_TIMEOUT_MS: expected an integer, got 'abc'"),
        ({"SCORING_TIMEOUT_MS": "-5"}, "SCORING_TIMEOUT_MS: must be at least 0, got -5"),
        ({"WORKER_COUNT": "0"}, "WORKER_COUNT: must be at least 1, got 0"),
        ({"SERVER_PORT": "70000"}, "SERVER_PORT: must be at most 65535, got 70000"),
        ({"SCORING_METRICS": "maybe"}, "SCORING_METRICS: expected true or false, got 'maybe'"),
        ({"AZUREML_LOG_LEVEL": "LOUD"}, "AZUREML_LOG_LEVEL: expected one of DEBUG, INFO, WARNING, ERROR, CRITICAL"),
        ({"AZUREML_MODEL_FRAMEWORK": "PyTorch"}, "AZUREML_MODEL_FRAMEWORK: expected one of ScikitLearn, Onnx, "),
        ({"SCORING_MODEL_SHA256": "abc"}, "SCORING_MODEL_SHA256: expected a SHA-256 digest as 64 hexadecimal"),
        ({"SCORING_MODEL_SHA256": "z" * 64}, "SCORING_MODEL_SHA256: expected a SHA-256 digest"),
        ({"SCORING_MODEL_MEMORY_MB": "-1"}, "SCORING_MODEL_MEMORY_MB: must be at least 0, got -1"),
    ],
)
def test_invalid_environment_values_name_the_variable(tmp_path: Path, environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings({}, environ=environ, cwd=tmp_path)
    assert str(info.value).startswith(message)


def test_invalid_cli_value_names_the_flag(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^--port: must be at most 65535, got 99999$"):
        load_settings({"port": "99999"}, environ={}, cwd=tmp_path)


@pytest.mark.parametrize("content", ["{not json", "[1, 2]"])
def test_broken_config_file_is_a_config_error(tmp_path: Path, content: str) -> None:
    (tmp_path / "config.json").write_text(content)
    with pytest.raises(ConfigError, match="config file"):
        load_settings({}, environ={}, cwd=tmp_path)


def test_missing_explicit_config_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="AZUREML_CONFIG_FILE: no such file"):
        load_settings({}, environ={"AZUREML_CONFIG_FILE": "nope.json"}, cwd=tmp_path)


def test_value_parsing(tmp_path: Path) -> None:
    environ = {
        "WORKER_PRELOAD": "TRUE",
        "AZUREML_LOG_LEVEL": "warn",
        "AML_CORS_ORIGINS": "www.microsoft.com,  www.bing.com",
        "SERVER_VERSION_LOG_RESPONSE_ENABLED": "false",
        "AML_APP_ROOT": str(tmp_path / "root"),
        "SEPERATE_HEALTH_ENDPOINT": "true",
    }
    settings, _ = load_settings({}, environ=environ, cwd=tmp_path)
    assert settings.worker_preload is True and settings.server_version_header is False
    assert settings.log_level == "WARNING"
    assert settings.cors_origins == ("www.microsoft.com", "www.bing.com")
    assert settings.app_root == tmp_path / "root"
    assert settings.health_port == 5000


def test_a_reference_boolean_that_is_not_one_is_false_with_a_warning(tmp_path: Path) -> None:
    # The reference starts with it (and reads it as false): a migrated container must start here too.
    settings, warnings = load_settings({}, environ={"WORKER_PRELOAD": "maybe"}, cwd=tmp_path)
    assert settings.worker_preload is False
    assert warnings == ["WORKER_PRELOAD: 'maybe' is read as false: azmlinfsrv turns it on only for 'true', in any case"]


def test_reference_booleans_in_the_config_file(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"WORKER_PRELOAD": True, "SEPERATE_HEALTH_ENDPOINT": "True"}))
    settings, warnings = load_settings({}, environ={}, cwd=tmp_path)
    assert settings.worker_preload is True and settings.health_port is None
    label = f"SEPERATE_HEALTH_ENDPOINT in {tmp_path / 'config.json'}"
    assert warnings == [f"{label}: 'True' is read as false: azmlinfsrv turns it on only for exactly 'true'"]


def test_model_dir_is_kept_verbatim(tmp_path: Path) -> None:
    settings, _ = load_settings({"model_dir": "./my/dir"}, environ={"AZUREML_MODEL_DIR": "/env/dir"}, cwd=tmp_path)
    assert settings.model_dir == "./my/dir"


def test_unknown_keyword_is_a_type_error(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="unknown settings: colour"):
        load_settings({"colour": "red"}, environ={}, cwd=tmp_path)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("test", "/test"), ("/test", "/test"), ("/test/", "/test"), ("a/b/", "/a/b"), ("/", ""), ("", ""), (" ", "")],
)
def test_path_prefix_is_normalised(tmp_path: Path, raw: str, expected: str) -> None:
    settings, _ = load_settings({"service_path_prefix": raw}, environ={}, cwd=tmp_path)
    assert settings.service_path_prefix == expected


@pytest.mark.parametrize("raw", ["a b", "/x?y", "a//b", "/p#q"])
def test_path_prefix_must_be_a_path(tmp_path: Path, raw: str) -> None:
    with pytest.raises(ConfigError, match="SERVICE_PATH_PREFIX: expected a URL path"):
        load_settings({}, environ={"SERVICE_PATH_PREFIX": raw}, cwd=tmp_path)


def test_model_settings_are_read_as_azure_ml_names_them(tmp_path: Path) -> None:
    environ = {
        "AZUREML_MODEL_FRAMEWORK": "ScikitLearn",
        "SCORING_MODEL_SHA256": "AB" * 32,
        "SCORING_MODEL_MEMORY_MB": "512",
        "SCORING_MODEL_PIN": "iris, churn",
        "SCORING_SKOPS_TRUSTED": "numpy.float64",
        "SCORING_TRUST_PICKLE": "yes",
    }
    settings, _ = load_settings({"model_name": "iris"}, environ=environ, cwd=tmp_path)
    assert settings.model_framework == "sklearn" and settings.model_name == "iris"
    assert settings.model_sha256 == "ab" * 32 and settings.model_memory_mb == 512
    assert settings.model_pin == ("iris", "churn") and settings.skops_trusted == ("numpy.float64",)
    assert settings.trust_pickle is True
    for spelling, name in (("onnx", "onnx"), ("Tensor-Flow", "tensorflow"), ("light_gbm", "lightgbm"), ("", None)):
        assert load_settings({}, environ={"AZUREML_MODEL_FRAMEWORK": spelling}, cwd=tmp_path)[0].model_framework == name
    assert load_settings({}, environ={"SCORING_MODEL_MEMORY_MB": "0"}, cwd=tmp_path)[0].model_memory_mb is None
    assert load_settings({}, environ={"SCORING_MODEL_SHA256": " "}, cwd=tmp_path)[0].model_sha256 is None
