"""scoring_runtime: serve an Azure ML score.py (init() and run()) on starlette, uvicorn and gunicorn.

The public API is imported on first use, so that `python -m scoring_runtime --help`, or a script that only reads
the settings, does not pay for the web stack. Nothing inside the package imports this module.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from scoring_runtime._version import __version__

if TYPE_CHECKING:
    from scoring_runtime.app import ScoringApp, create_app
    from scoring_runtime.azureml import AMLRequest, AMLResponse, rawhttp
    from scoring_runtime.azureml.models import get_model_path
    from scoring_runtime.config import Settings, load_settings
    from scoring_runtime.errors import ModelNotFoundError, ScoringRuntimeError
    from scoring_runtime.models.script_models import leased_model, load_model

_HOMES = {
    "AMLRequest": "scoring_runtime.azureml",
    "AMLResponse": "scoring_runtime.azureml",
    "rawhttp": "scoring_runtime.azureml",
    "get_model_path": "scoring_runtime.azureml.models",
    "ScoringApp": "scoring_runtime.app",
    "create_app": "scoring_runtime.app",
    "Settings": "scoring_runtime.config",
    "load_settings": "scoring_runtime.config",
    "ModelNotFoundError": "scoring_runtime.errors",
    "ScoringRuntimeError": "scoring_runtime.errors",
    "load_model": "scoring_runtime.models.script_models",
    "leased_model": "scoring_runtime.models.script_models",
}

__all__ = [
    "AMLRequest",
    "AMLResponse",
    "ModelNotFoundError",
    "ScoringApp",
    "ScoringRuntimeError",
    "Settings",
    "__version__",
    "create_app",
    "get_model_path",
    "leased_model",
    "load_model",
    "load_settings",
    "rawhttp",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'scoring_runtime' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
