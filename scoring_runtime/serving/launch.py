"""Starting the server the settings describe: logging, the banner, authentication, then one process or several."""

from __future__ import annotations

import logging

from scoring_runtime._version import __version__
from scoring_runtime.auth import authenticator as build_authenticator
from scoring_runtime.config import Settings
from scoring_runtime.observability.log import configure_logging, install_print_hook
from scoring_runtime.serving.server import run_uvicorn
from scoring_runtime.serving.workers import run_gunicorn

logger = logging.getLogger("scoring_runtime")


def run(settings: Settings, warnings: list[str] | None = None) -> int:
    """Serve until stopped; return the process exit code. A ConfigError found here is raised before anything starts."""
    script_path = settings.entry_script_path()
    override_dirs = (settings.app_root,) + ((script_path.parent,) if script_path else ())
    configure_logging(settings.log_level, override_dirs, settings.log_format)
    install_print_hook()
    for warning in warnings or ():
        logger.warning(warning)
    _log_banner(settings)
    # Key files are read and checked here, once: a bad one stops start-up before any port is bound or worker forked.
    auth = build_authenticator(settings)
    if settings.worker_count == 1:
        return run_uvicorn(settings, auth)
    return run_gunicorn(settings, auth)


def _log_banner(settings: Settings) -> None:
    logger.info("scoring_runtime %s", __version__)
    logger.info("Entry script: %s", settings.entry_script_path() or "main (from sys.path)")
    logger.info("Model directory: %s", settings.model_dir)
    logger.info("Config file: %s", settings.config_file)
    logger.info("Workers: %d, run() concurrency per worker: %d", settings.worker_count, settings.max_concurrency)
    ports = f"{settings.port}" + (f", health {settings.health_port}" if settings.health_port else "")
    logger.info("Listening on %s port %s", settings.host, ports)
    if settings.model_dir is None:
        logger.info("AZUREML_MODEL_DIR is not set; use --model_dir to set it.")
