"""The reference launcher's start-up lines, byte for byte: what azmlinfsrv prints before it starts gunicorn.

azmlinfsrv writes them with print(), without the log line prefix, and operators' log queries match them as they are,
so in the text format they are written the same way. In the JSON format each one is a record of `azmlinfsrv`
instead: there every line of output must stay one JSON object.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence

from scoring_runtime.app import script_environment, serves_models_only
from scoring_runtime.config import INVALID_INSTRUMENTATION_KEY, Settings

logger = logging.getLogger("azmlinfsrv")

# The interface these lines reproduce. Our own version is the next line, logged.
REFERENCE_VERSION = "1.5.1"

# What each worker of the reference prints just before its print() hook is installed.
INITIALIZING_LOGGER = "Initializing logger"

# The variables the reference shows, in its order, under its labels.
_SETTINGS = (
    ("AZUREML_ENTRY_SCRIPT", "Entry Script Name"),
    ("AZUREML_MODEL_DIR", "Model Directory"),
    ("AZUREML_CONFIG_FILE", "Config File"),
    ("WORKER_COUNT", "Worker Count"),
    ("WORKER_TIMEOUT", "Worker Timeout (seconds)"),
    ("SERVER_PORT", "Server Port"),
    ("HEALTH_PORT", "Health Port"),
    ("AML_APP_INSIGHTS_ENABLED", "Application Insights Enabled"),
    ("AML_APP_INSIGHTS_KEY", "Application Insights Key"),
    ("HTTP_X_MS_SERVER_VERSION", "Inferencing HTTP server version"),
    ("AML_CORS_ORIGINS", "CORS for the specified origins"),
    ("SEPERATE_HEALTH_ENDPOINT", "Create dedicated endpoint for health"),
)


def reference_lines(settings: Settings, warnings: Sequence[str]) -> list[str]:
    """The lines azmlinfsrv prints at start-up, with the values of these settings.

    A value is what the reference shows, the variable in the environment the script will see, or `None` where the
    script will see none: so the lines tell the script's author what it reads.
    """
    seen = dict(os.environ) | script_environment(settings)
    lines: list[str] = []
    if "AZUREML_MODEL_DIR" not in seen:
        lines.append("The environment variable 'AZUREML_MODEL_DIR' has not been set.")
        lines.append("Use the --model_dir command line argument to set it.")
    if settings.app_insights_enabled:  # only ever with a valid key
        lines.append("Valid Application Insights instrumentation key provided.")
    elif INVALID_INSTRUMENTATION_KEY in warnings:
        lines.append("Invalid Application Insights instrumentation key provided.")
        lines.append("Application Insights has been disabled.")
    lines += ["", f"Azure ML Inferencing HTTP server v{REFERENCE_VERSION}", "", "", "Server Settings", "-" * 15]
    for name, label in _SETTINGS:
        value = seen.get(name)
        if value is not None and name == "AML_APP_INSIGHTS_KEY":
            value = "AppInsights key provided"  # never the key itself
        elif value is not None and name == "AML_CORS_ORIGINS":
            value = f"Enabling CORS for {value}"
        lines.append(f"{label}: {value}")
    lines += ["", "", "Server Routes", "-" * 15]
    lines.append(f"Liveness Probe: GET   127.0.0.1:{seen['HEALTH_PORT']}/")
    lines.append(f"Score:          POST  127.0.0.1:{seen['SERVER_PORT']}/score")
    if serves_models_only(settings):
        lines.append(f"Infer (V2):     POST  127.0.0.1:{seen['SERVER_PORT']}/v2/models/<name>/infer")
    return [*lines, ""]


def show(lines: Sequence[str], log_format: str) -> None:
    """Print the lines as the reference does, or in the JSON format, log them as records of `azmlinfsrv`."""
    if log_format == "text":
        sys.stdout.write("".join(f"{line}\n" for line in lines))
        sys.stdout.flush()
        return
    for line in lines:
        if line.strip("-"):  # blank lines and underlines say nothing as records of their own
            logger.info("%s", line)
