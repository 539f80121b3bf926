"""Where settings come from, and how they are merged into one Settings.

Precedence: CLI flag > environment > config file (keys are the environment names) > default.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from scoring_runtime.config_values import ReadAs
from scoring_runtime.errors import ConfigError
from scoring_runtime.settings import ENV_NAMES, FIELDS, Settings

__all__ = ["ENV_NAMES", "FIELDS", "INVALID_INSTRUMENTATION_KEY", "Settings", "load_settings"]

# Application Insights asked for and turned off for its key; start-up also says so in the reference's words.
INVALID_INSTRUMENTATION_KEY = (
    "AML_APP_INSIGHTS_ENABLED is read as false: AML_APP_INSIGHTS_KEY is not a valid instrumentation key"
)
_MISSING_INSTRUMENTATION_KEY = "AML_APP_INSIGHTS_ENABLED is read as false: AML_APP_INSIGHTS_KEY is not set"
# The reference's check of an Application Insights key (case-insensitive).
_INSTRUMENTATION_KEY = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)
# What turns the OTLP exporter on for a signal: one of the endpoint variables OpenTelemetry defines for it. The other
# OTEL_EXPORTER_OTLP_* variables are read where the exporting is done (otlp_spans.py, and the SDK's log exporter).
OTLP_ENDPOINTS = {
    "traces": ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
    "logs": ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT"),
}
# The modules of the `telemetry` extra each exporter needs.
AZURE_MODULES = ("opentelemetry.sdk", "azure.monitor.opentelemetry.exporter")
OTLP_MODULES = ("opentelemetry.sdk", "opentelemetry.exporter.otlp.proto.http")


def load_settings(
    cli: Mapping[str, object] | None = None,
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> tuple[Settings, list[str]]:
    """Merge the sources into Settings. Returns the settings and warnings worth logging.

    `cli` is keyed by field name (None values mean "not given"); `environ` defaults to os.environ.
    """
    env = os.environ if environ is None else environ
    given = {name: value for name, value in (cli or {}).items() if value is not None}
    unknown = set(given) - set(FIELDS)
    if unknown:
        raise TypeError(f"unknown settings: {', '.join(sorted(unknown))}")
    if "app_insights_key" in given:  # the reference's flag turns Application Insights on with the key it gives
        given.setdefault("app_insights_enabled", True)
    values: dict[str, Any] = {}
    warnings: list[str] = []
    for name, spec in FIELDS.items():
        envname = spec.metadata["env"]
        if name in given:
            values[name] = _parse(name, given[name], _flag_label(name), warnings)
        elif env.get(envname, "") != "":
            values[name] = _parse(name, env[envname], envname, warnings)
    values.setdefault("app_root", (cwd or Path.cwd()))
    values["app_root"] = Path(values["app_root"]).absolute()

    config_path = _find_config_file(values)
    if config_path is not None:
        file_values = _read_config_file(config_path)
        for key, raw in file_values.items():
            field_name = ENV_NAMES.get(key)
            if field_name is None:
                warnings.append(f"Ignoring unknown key {key!r} in config file {config_path}")
            elif field_name not in values and field_name != "config_file":
                values[field_name] = _parse(field_name, raw, f"{key} in {config_path}", warnings)
        values["config_file"] = str(config_path)

    if "health_port" not in values and values.get("separate_health_endpoint"):
        values["health_port"] = 5000
    key, connection_string = values.get("app_insights_key") or "", values.get("app_insights_connection_string")
    if values.get("app_insights_enabled") and not connection_string and not _INSTRUMENTATION_KEY.fullmatch(key):
        # As the reference's launcher: off, and the script sees AML_APP_INSIGHTS_ENABLED=false.
        values["app_insights_enabled"] = False
        warnings.append(INVALID_INSTRUMENTATION_KEY if values.get("app_insights_key") else _MISSING_INSTRUMENTATION_KEY)
    settings = Settings(**values)
    return settings, warnings + _not_acted_on(settings) + _telemetry_unavailable(settings, env)


def otlp_signals(environ: Mapping[str, str]) -> frozenset[str]:
    """The signals (`traces`, `logs`) whose OTLP exporter the environment turns on."""
    return frozenset(signal for signal, names in OTLP_ENDPOINTS.items() if any(environ.get(name) for name in names))


def missing_module(modules: tuple[str, ...]) -> str | None:
    """The first of `modules` that cannot be imported, found without importing it (a top-level package's own code
    does not run; a submodule's parents are imported)."""
    for module in modules:
        try:
            if importlib.util.find_spec(module) is None:
                return module
        except ModuleNotFoundError:  # a parent package is missing
            return module
        except ValueError:  # in sys.modules without a spec (put there by hand): importable
            continue
    return None


def _telemetry_unavailable(settings: Settings, env: Mapping[str, str]) -> list[str]:
    """One warning for each exporter asked for whose part of the `telemetry` extra is not installed."""
    found = []
    missing = missing_module(AZURE_MODULES) if settings.app_insights_enabled else None
    if missing is not None:
        reason = f"the telemetry extra is not installed (pip install 'scoring-runtime[telemetry]'): no {missing}"
        found.append(f"AML_APP_INSIGHTS_ENABLED=true is accepted but not acted on: {reason}")
        if not settings.app_insights_log_response:
            found.append(f"APP_INSIGHTS_LOG_RESPONSE_ENABLED=false is accepted but not acted on: {reason}")
    signals = otlp_signals(env)
    missing = missing_module(OTLP_MODULES) if signals else None
    if missing is not None:
        named = next(name for signal in sorted(signals) for name in OTLP_ENDPOINTS[signal] if env.get(name))
        found.append(
            f"{named} is set but not acted on: the telemetry extra is not installed "
            f"(pip install 'scoring-runtime[telemetry]'): no {missing}"
        )
    return found


def _flag_label(name: str) -> str:
    cli = FIELDS[name].metadata["cli"]
    return f"--{cli}" if cli else name


def _parse(name: str, raw: object, label: str, warnings: list[str]) -> Any:
    try:
        value = FIELDS[name].metadata["parse"](raw)
    except ValueError as exc:
        raise ConfigError(f"{label}: {exc}") from None
    if isinstance(value, ReadAs):
        warnings.append(f"{label}: {value.note}")
        return value.value
    return value


def _not_acted_on(settings: Settings) -> list[str]:
    """One warning for each setting that asks for something this server does not do (a value other than its default):
    a migrated container keeps starting, and its owner learns what is missing."""
    found = []
    for name, spec in FIELDS.items():
        reason, value = spec.metadata["ignored"], getattr(settings, name)
        if reason and value != spec.default:
            shown = str(value).lower() if isinstance(value, bool) else value
            found.append(f"{spec.metadata['env']}={shown} is accepted but not acted on: {reason}")
    return found


def _find_config_file(values: Mapping[str, Any]) -> Path | None:
    app_root: Path = values["app_root"]
    explicit = values.get("config_file")
    if explicit:
        path: Path = (app_root / explicit).absolute()
        if not path.is_file():
            raise ConfigError(f"AZUREML_CONFIG_FILE: no such file: {path}")
        return path
    candidates = [app_root / "config.json"]
    if values.get("entry_script"):
        candidates.append((app_root / values["entry_script"]).parent / "config.json")
    for candidate in candidates:
        if candidate.is_file() and candidate.stat().st_size > 0:
            return Path(candidate).absolute()
    return None


def _read_config_file(path: Path) -> dict[str, Any]:
    try:
        content = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"config file {path}: cannot be read as JSON: {exc}") from None
    if not isinstance(content, dict):
        raise ConfigError(f"config file {path}: expected a JSON object, got {type(content).__name__}")
    return content
