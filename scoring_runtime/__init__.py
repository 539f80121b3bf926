"""scoring_runtime: serve an Azure ML score.py (init() and run()) on starlette, uvicorn and gunicorn."""

__version__ = "0.1.0"

from scoring_runtime.app import ScoringApp, create_app
from scoring_runtime.config import Settings, load_settings
from scoring_runtime.errors import ModelNotFoundError, ScoringRuntimeError
from scoring_runtime.models import get_model_path
from scoring_runtime.rawhttp import AMLRequest, AMLResponse, rawhttp

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
    "load_settings",
    "rawhttp",
]
