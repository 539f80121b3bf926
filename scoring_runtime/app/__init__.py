"""The ASGI application (starlette): routes, the lifespan that loads score.py, scoring, request ids, CORS, swagger.

What the serving layer may use is exported here, and only here: `ScoringApp` (its ASGI interface and its documented
serving surface), `create_app`, and `preload` with its result `Preloaded`.
"""

from scoring_runtime.app.application import ScoringApp, create_app
from scoring_runtime.app.lifecycle import Preloaded, preload

__all__ = ["Preloaded", "ScoringApp", "create_app", "preload"]
