"""Loading score.py and running its init(): for the app's lifespan, and for a server that does it before forking."""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from dataclasses import dataclass
from typing import Any

from scoring_runtime.app.served_models import (
    Catalogue,
    configure_script_models,
    load_catalogue,
    score_script,
    serves_models_only,
)
from scoring_runtime.azureml import register_azureml_aliases
from scoring_runtime.config import Settings
from scoring_runtime.contract.loading import (
    export_environment,
    init_failure,
    load_script,
    log_model_dir,
    run_init,
)
from scoring_runtime.contract.script import UserScript
from scoring_runtime.errors import StartupError

logger = logging.getLogger("azmlinfsrv")


@dataclass(frozen=True)
class Preloaded:
    """A script imported and initialised before the app was made (WORKER_PRELOAD: once, before gunicorn forks)."""

    script: UserScript
    init_seconds: float
    catalogue: Catalogue | None = None  # the models served when there is no entry script


def load_user_script(settings: Settings) -> UserScript:
    """Import score.py the way every server path does: azureml aliases registered, environment exported."""
    register_azureml_aliases()
    export_environment(settings)
    try:
        configure_script_models(settings)
        return load_script(settings)
    except StartupError:
        log_model_dir(settings.model_dir)
        raise


def load_models(settings: Settings) -> Catalogue:
    """The model folder's models, for a deployment without an entry script; its contents are logged on failure."""
    export_environment(settings)
    try:
        return load_catalogue(settings)
    except StartupError as exc:
        logger.error("%s", exc)
        log_model_dir(settings.model_dir)
        raise


async def finish_async_init(pending: Any, model_dir: str | None) -> None:
    """Await what init() returned when it is `async def init`."""
    if not inspect.isawaitable(pending):
        return
    try:
        await pending
    except BaseException as exc:
        raise init_failure(exc, model_dir) from None
    logger.info("Users's init has completed successfully")


def preload(settings: Settings) -> Preloaded:
    """Import the script and run init() in this process, on this thread; or load the model folder's models when there
    is no script. Raises ScriptLoadError or ModelLoadError."""
    started = time.perf_counter()
    if serves_models_only(settings):
        catalogue = load_models(settings)
        return Preloaded(score_script(catalogue), time.perf_counter() - started, catalogue)
    script = load_user_script(settings)
    started = time.perf_counter()
    pending = run_init(script, settings.model_dir)
    if inspect.isawaitable(pending):  # an event loop here only for `async def init`
        asyncio.run(finish_async_init(pending, settings.model_dir))
    return Preloaded(script, time.perf_counter() - started)
