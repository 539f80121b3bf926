"""Where settings come from, and how they are merged into one Settings.

Precedence: CLI flag > environment > config file (keys are the environment names) > default.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from scoring_runtime.errors import ConfigError
from scoring_runtime.settings import ENV_NAMES, FIELDS, Settings

__all__ = ["ENV_NAMES", "FIELDS", "Settings", "load_settings"]


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
    values: dict[str, Any] = {}
    for name, spec in FIELDS.items():
        envname = spec.metadata["env"]
        if name in given:
            values[name] = _parse(name, given[name], _flag_label(name))
        elif env.get(envname, "") != "":
            values[name] = _parse(name, env[envname], envname)
    values.setdefault("app_root", (cwd or Path.cwd()))
    values["app_root"] = Path(values["app_root"]).absolute()

    warnings: list[str] = []
    config_path = _find_config_file(values)
    if config_path is not None:
        file_values = _read_config_file(config_path)
        for key, raw in file_values.items():
            field_name = ENV_NAMES.get(key)
            if field_name is None:
                warnings.append(f"Ignoring unknown key {key!r} in config file {config_path}")
            elif field_name not in values and field_name != "config_file":
                values[field_name] = _parse(field_name, raw, f"{key} in {config_path}")
        values["config_file"] = str(config_path)

    if "health_port" not in values and env.get("SEPERATE_HEALTH_ENDPOINT", "").lower() == "true":
        values["health_port"] = 5000
    return Settings(**values), warnings


def _flag_label(name: str) -> str:
    cli = FIELDS[name].metadata["cli"]
    return f"--{cli}" if cli else name


def _parse(name: str, raw: object, label: str) -> Any:
    try:
        return FIELDS[name].metadata["parse"](raw)
    except ValueError as exc:
        raise ConfigError(f"{label}: {exc}") from None


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
