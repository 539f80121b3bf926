"""Optional authentication of /score: API keys and bearer JWTs, framework-free."""

from scoring_runtime.auth.authenticator import Authenticator, authenticator

__all__ = ["Authenticator", "authenticator"]
