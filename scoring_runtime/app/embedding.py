"""The app for tools that embed scoring_runtime in their own ASGI server."""

from __future__ import annotations

import logging
import os
from typing import Any

from scoring_runtime.app.application import ScoringApp
from scoring_runtime.config import load_settings

logger = logging.getLogger("azmlinfsrv")


def create_app(
    entry_script: str | os.PathLike[str] | None = None, model_dir: str | os.PathLike[str] | None = None, **settings: Any
) -> ScoringApp:
    """The ASGI app for a score.py, for tools that embed scoring_runtime.

    Keyword settings (field names of `scoring_runtime.config.Settings`) win over the environment and config file.
    The app's lifespan imports the script and calls init(); serve it with lifespan enabled.
    """
    overrides = {"entry_script": entry_script, "model_dir": model_dir, **settings}
    loaded, warnings = load_settings(
        {k: os.fspath(v) if isinstance(v, os.PathLike) else v for k, v in overrides.items()}
    )
    for warning in warnings:
        logger.warning(warning)
    return ScoringApp(loaded)
