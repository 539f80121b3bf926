"""The ASGI application (starlette): routes, the lifespan that loads score.py, scoring, request ids, CORS, swagger.

What the serving layer may use is exported here, and only here: `ScoringApp` (its ASGI interface and its documented
serving surface), `create_app`, `preload` with its result `Preloaded`, `script_environment` (what the script will
see in its environment, which the start-up banner shows), and `serves_models_only` (no script: the model folder's
models are served).
"""

from scoring_runtime.app.application import ScoringApp
from scoring_runtime.app.embedding import create_app
from scoring_runtime.app.lifecycle import Preloaded, preload
from scoring_runtime.app.served_models import serves_models_only
from scoring_runtime.contract.loading import script_environment

__all__ = ["Preloaded", "ScoringApp", "create_app", "preload", "script_environment", "serves_models_only"]
