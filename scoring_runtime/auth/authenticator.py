"""Optional authentication of /score (and, by a setting, /swagger.json): API keys and bearer JWTs.

Off unless a key or a token key is configured. Built once from the settings; per request it is given the raw
`Authorization` header value and either returns or raises Unauthorized. It knows nothing of HTTP frameworks.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from scoring_runtime.auth.watched_file import WatchedFile
from scoring_runtime.config import Settings
from scoring_runtime.errors import ConfigError, Unauthorized

if TYPE_CHECKING:
    # pyjwt and cryptography take about 0.1 s to import: tokens.py is loaded only when tokens are configured.
    from scoring_runtime.auth.tokens import TokenVerifier

logger = logging.getLogger("azmlinfsrv")

# Any of these set means tokens are meant to be checked (or the configuration is wrong, which tokens.py reports).
_TOKEN_SETTINGS = ("jwt_secret", "jwt_public_key_file", "jwt_jwks_file", "jwt_audience", "jwt_issuer")
MAX_KEYS = 2  # a primary and a secondary: rotation swaps in a new key while the old one still works


class Authenticator:
    def __init__(
        self,
        keys: Callable[[], tuple[bytes, ...]] | None,
        tokens: TokenVerifier | None,
        protect_swagger: bool = False,
    ) -> None:
        self._keys = keys
        self._tokens = tokens
        self.protect_swagger = protect_swagger
        accepted = " or ".join(kind for kind, on in (("<key>", keys), ("<token>", tokens)) if on is not None)
        self._missing = f"Authentication required: send the header 'Authorization: Bearer {accepted}'"

    @property
    def enabled(self) -> bool:
        return self._keys is not None or self._tokens is not None

    def check(self, authorization: str | None) -> None:
        """Return if the `Authorization` header value carries an accepted key or token; raise Unauthorized if not."""
        parts = authorization.split(None, 1) if authorization else []
        if len(parts) != 2 or parts[0].lower() != "bearer":
            # No bearer credentials at all: RFC 6750 §3.1 says the challenge then names no error.
            raise Unauthorized(self._missing)
        credentials = parts[1].strip()
        if self._keys is not None and _matches(credentials, self._keys()):
            return
        if self._tokens is not None and credentials.count(".") == 2:
            from scoring_runtime.auth.tokens import TokenRejected  # already imported: the verifier comes from there

            try:
                self._tokens.verify(credentials)
            except TokenRejected as rejected:
                raise _invalid(rejected.reason) from None
            return
        raise _invalid("the key is not valid" if self._keys is not None else "the token is malformed")


def _invalid(reason: str) -> Unauthorized:
    return Unauthorized(f"Invalid credentials: {reason}", reason)


def _matches(presented: str, keys: tuple[bytes, ...]) -> bool:
    # Header values arrive decoded as latin-1, so this gives back the bytes the client sent (UTF-8 keys included).
    candidate = presented.encode("latin-1", "replace")
    matched = False
    for key in keys:  # every key is compared, so the time taken does not tell which one matched
        matched |= hmac.compare_digest(candidate, key)
    return matched


def _fixed(keys: tuple[bytes, ...]) -> Callable[[], tuple[bytes, ...]]:
    return lambda: keys


def parse_key_file(content: bytes) -> tuple[bytes, ...]:
    keys = tuple(line.strip() for line in content.splitlines() if line.strip())
    if not keys:
        raise ValueError("no key in the file")
    if len(keys) > MAX_KEYS:
        raise ValueError(f"expected at most {MAX_KEYS} keys (primary, secondary), one per line; found {len(keys)}")
    return keys


def authenticator(settings: Settings) -> Authenticator:
    """The authenticator the settings describe (not `enabled` when none is configured). Raises ConfigError."""
    keys: Callable[[], tuple[bytes, ...]] | None = None
    key_source = ""
    if settings.auth_keys and settings.auth_key_file:
        raise ConfigError("SCORING_AUTH_KEYS and SCORING_AUTH_KEY_FILE are both set: keys come from one of them")
    if settings.auth_keys:
        keys = _fixed(tuple(key.encode() for key in settings.auth_keys))
        key_source = f"{len(settings.auth_keys)} from SCORING_AUTH_KEYS"
    elif settings.auth_key_file:
        watched = WatchedFile(settings.auth_key_file, parse_key_file, "SCORING_AUTH_KEY_FILE")
        keys = watched.current
        key_source = f"{len(watched.value)} from {settings.auth_key_file}, re-read when it changes"
    tokens: TokenVerifier | None = None
    if any(getattr(settings, name) for name in _TOKEN_SETTINGS):
        from scoring_runtime.auth.tokens import token_verifier

        tokens = token_verifier(settings)
    result = Authenticator(keys, tokens, settings.auth_swagger)
    if not result.enabled:
        if settings.auth_swagger:
            raise ConfigError("SCORING_AUTH_SWAGGER is true but no key or token key is configured")
        return result
    methods = ([f"API keys ({key_source})"] if keys else []) + ([f"JWTs ({tokens.description})"] if tokens else [])
    protected = "/score and /swagger.json" if settings.auth_swagger else "/score"
    logger.info("Authentication required on %s: %s", protected, "; ".join(methods))
    return result
