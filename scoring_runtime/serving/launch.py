"""Starting the server the settings describe: the reference's banner, logging, our lines, auth, the processes."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from scoring_runtime._version import __version__
from scoring_runtime.app import serves_models_only
from scoring_runtime.auth import authenticator as build_authenticator
from scoring_runtime.config import Settings
from scoring_runtime.observability.log import configure_logging, install_print_hook
from scoring_runtime.serving import banner
from scoring_runtime.serving.server import run_uvicorn
from scoring_runtime.serving.workers import run_gunicorn

logger = logging.getLogger("azmlinfsrv")


def run(settings: Settings, warnings: list[str] | None = None, notes: Sequence[str] = ()) -> int:
    """Serve until stopped; return the process exit code. A ConfigError found here is raised before anything starts."""
    script_path = settings.entry_script_path()
    override_dirs = (settings.app_root,) + ((script_path.parent,) if script_path else ())
    reference = banner.reference_lines(settings, warnings or ())
    text = settings.log_format == "text"
    if text:  # as the reference prints them: before its workers load a logging.json and log that they did
        banner.show(reference, settings.log_format)
    configure_logging(settings.log_level, override_dirs, settings.log_format)
    if not text:  # JSON records need the logging set up
        banner.show(reference, settings.log_format)
    banner.show([banner.INITIALIZING_LOGGER], settings.log_format)
    install_print_hook()
    for warning in warnings or ():
        logger.warning(warning)
    _log_banner(settings)
    for note in notes:
        logger.info(note)
    # Key files are read and checked here, once: a bad one stops start-up before any port is bound or worker forked.
    auth = build_authenticator(settings)
    if settings.worker_count == 1:
        return run_uvicorn(settings, auth)
    return run_gunicorn(settings, auth)


def _log_banner(settings: Settings) -> None:
    """What we tell beyond the reference's lines (the model folder and config file are in those already)."""
    logger.info("scoring_runtime %s", __version__)
    if serves_models_only(settings):
        logger.info("No entry script: serving the model folder %s as it is", settings.model_dir)
    else:
        logger.info("Entry script: %s", settings.entry_script_path() or "main (from sys.path)")
    logger.info("Workers: %d, run() concurrency per worker: %d", settings.worker_count, settings.max_concurrency)
    ports = f"{settings.port}" + (f", health {settings.health_port}" if settings.health_port else "")
    logger.info("Listening on %s port %s", settings.host, ports)
