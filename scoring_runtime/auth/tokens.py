"""Bearer JWTs, checked with pyjwt against the one key (or JWKS) the configuration names.

The accepted algorithm always comes from the configured key, never from the token's header: a token that names
another algorithm is refused before its signature is looked at (the algorithm-confusion defence of RFC 8725 §2.1).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import jwt
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from scoring_runtime.auth.watched_file import WatchedFile
from scoring_runtime.config import Settings
from scoring_runtime.errors import ConfigError

if TYPE_CHECKING:
    from jwt.types import Options

logger = logging.getLogger("azmlinfsrv")

# pyjwt warns, on every request, about keys shorter than these (RFC 7518 §3.2, NIST SP 800-131A): refused up front.
MIN_HMAC_BYTES = {"HS256": 32, "HS384": 48, "HS512": 64}
MIN_RSA_BITS = 2048
# What a JWKS key may name with `alg`; "none" and anything pyjwt cannot verify are not among them.
JWK_ALGORITHMS = frozenset(
    {"HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"}
)
_SOURCES = ("SCORING_JWT_SECRET", "SCORING_JWT_PUBLIC_KEY_FILE", "SCORING_JWT_JWKS_FILE")
_CLAIM_SETTINGS = (("SCORING_JWT_AUDIENCE", "jwt_audience"), ("SCORING_JWT_ISSUER", "jwt_issuer"))


class TokenRejected(Exception):
    """The token is not accepted; `reason` is a short fixed phrase, fit for a WWW-Authenticate header."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class VerificationKey:
    key: Any  # the bytes of an HMAC secret or a cryptography public key, as jwt.decode takes them
    algorithms: list[str]  # exactly one, implied by the key


class TokenVerifier:
    def __init__(
        self,
        key: VerificationKey | WatchedFile[dict[str, VerificationKey]],
        audience: str | None,
        issuer: str | None,
        leeway_s: int,
        description: str,
    ) -> None:
        self._key = key
        self.audience = audience
        self.issuer = issuer
        self.leeway_s = leeway_s
        self.description = description
        # aud and iss are checked only when configured; pyjwt would otherwise refuse every token that has an aud.
        self._options: Options = {
            "require": ["exp"],
            "verify_aud": audience is not None,
            "verify_iss": issuer is not None,
        }

    def verify(self, token: str) -> None:
        try:
            key = self._key_for(token)
            jwt.decode(
                token,
                key.key,
                algorithms=key.algorithms,
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway_s,
                options=self._options,
            )
        except TokenRejected:
            raise
        except jwt.PyJWTError as exc:
            raise TokenRejected(_reason(exc)) from None
        except Exception:
            # Older pyjwt releases in our range let crafted tokens escape their error family: a deeply nested header
            # raises RecursionError before any signature is checked, an "exp" of 1e999 OverflowError.
            raise TokenRejected("the token is malformed") from None

    def _key_for(self, token: str) -> VerificationKey:
        if isinstance(self._key, VerificationKey):
            return self._key
        kid = jwt.get_unverified_header(token).get("kid")
        key = self._key.current().get(kid) if isinstance(kid, str) else None
        if key is None:
            raise TokenRejected("the token's key id (kid) is not in the key set")
        return key


def _reason(exc: jwt.PyJWTError) -> str:
    if isinstance(exc, jwt.ExpiredSignatureError):
        return "the token has expired"
    if isinstance(exc, jwt.ImmatureSignatureError):
        return "the token is not valid yet"
    if isinstance(exc, jwt.MissingRequiredClaimError):
        return f"the token has no {exc.claim} claim"
    if isinstance(exc, jwt.InvalidAudienceError):
        return "the token is for another audience"
    if isinstance(exc, jwt.InvalidIssuerError):
        return "the token is from another issuer"
    if isinstance(exc, jwt.InvalidAlgorithmError):
        return "the token's algorithm is not accepted"
    if isinstance(exc, jwt.InvalidSignatureError):
        return "the token's signature does not verify"
    return "the token is malformed"


def token_verifier(settings: Settings) -> TokenVerifier | None:
    """The verifier the settings describe, or None; keys are read and checked here, once."""
    values = (settings.jwt_secret, settings.jwt_public_key_file, settings.jwt_jwks_file)
    given = [name for name, value in zip(_SOURCES, values, strict=True) if value]
    if len(given) > 1:
        raise ConfigError(f"{' and '.join(given)} are both set: tokens are checked with one of them")
    if not given:
        # A claim check without a key would leave the operator believing tokens are checked when nothing is.
        claims = [name for name, value in _CLAIM_SETTINGS if getattr(settings, value)]
        if claims:
            raise ConfigError(f"{claims[0]} is set, but no key to check tokens with: set one of {', '.join(_SOURCES)}")
        return None
    key: VerificationKey | WatchedFile[dict[str, VerificationKey]]
    if settings.jwt_secret:
        key = VerificationKey(settings.jwt_secret.encode(), ["HS256"])
        _check_strength(key, "SCORING_JWT_SECRET")
        description = "HS256 secret from SCORING_JWT_SECRET"
    elif settings.jwt_public_key_file:
        key = _public_key(settings.jwt_public_key_file)
        description = f"{key.algorithms[0]} public key {settings.jwt_public_key_file}"
    else:
        assert settings.jwt_jwks_file
        key = WatchedFile(settings.jwt_jwks_file, parse_jwks, "SCORING_JWT_JWKS_FILE")
        description = f"JWKS {settings.jwt_jwks_file} ({len(key.value)} keys)"
    return TokenVerifier(key, settings.jwt_audience, settings.jwt_issuer, settings.jwt_leeway_s, description)


def _public_key(path: str) -> VerificationKey:
    label = "SCORING_JWT_PUBLIC_KEY_FILE"
    try:
        with open(path, "rb") as file:
            public_key = load_pem_public_key(file.read())
    except OSError as exc:
        raise ConfigError(f"{label}: {path}: {exc.strerror or exc}") from None
    except (ValueError, UnsupportedAlgorithm):
        raise ConfigError(f"{label}: {path}: not a PEM public key (-----BEGIN PUBLIC KEY-----)") from None
    if isinstance(public_key, rsa.RSAPublicKey):
        key = VerificationKey(public_key, ["RS256"])
    elif isinstance(public_key, ec.EllipticCurvePublicKey) and isinstance(public_key.curve, ec.SECP256R1):
        key = VerificationKey(public_key, ["ES256"])
    else:
        raise ConfigError(f"{label}: {path}: expected an RSA key (RS256) or an EC P-256 key (ES256)")
    _check_strength(key, f"{label}: {path}")
    return key


def _check_strength(key: VerificationKey, label: str) -> None:
    algorithm = key.algorithms[0]
    if algorithm in MIN_HMAC_BYTES and len(key.key) < MIN_HMAC_BYTES[algorithm]:
        minimum = MIN_HMAC_BYTES[algorithm]
        raise ConfigError(f"{label}: an {algorithm} key must be at least {minimum} bytes long, got {len(key.key)}")
    if isinstance(key.key, rsa.RSAPublicKey) and key.key.key_size < MIN_RSA_BITS:
        raise ConfigError(f"{label}: an RSA key must be at least {MIN_RSA_BITS} bits long, got {key.key.key_size}")


def parse_jwks(content: bytes) -> dict[str, VerificationKey]:
    """The signing keys of a JWKS document by kid. Keys that cannot be used are skipped with a warning."""
    try:
        document = json.loads(content)
    except ValueError as exc:
        raise ValueError(f"not a JSON document: {exc}") from None
    entries = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise ValueError('expected a JSON object with a "keys" list (a JWKS)')
    keys: dict[str, VerificationKey] = {}
    for entry in entries:
        kid = entry.get("kid") if isinstance(entry, Mapping) else None
        if not isinstance(kid, str) or not kid:
            logger.warning("SCORING_JWT_JWKS_FILE: skipping a key without a kid")
            continue
        try:
            keys.setdefault(kid, _jwk(entry))
        except ValueError as exc:
            logger.warning("SCORING_JWT_JWKS_FILE: skipping key %r: %s", kid, exc)
    if not keys:
        raise ValueError("no usable signing key with a kid")
    return keys


def _jwk(entry: Mapping[str, Any]) -> VerificationKey:
    if entry.get("use", "sig") != "sig":
        raise ValueError("not a signing key")
    if entry.get("kty") != "oct" and "d" in entry:
        raise ValueError("it holds a private key; a JWKS for verifying holds public keys only")
    if "alg" in entry and not (isinstance(entry["alg"], str) and entry["alg"] in JWK_ALGORITHMS):
        raise ValueError(f"algorithm not accepted; expected one of {', '.join(sorted(JWK_ALGORITHMS))}")
    try:
        jwk = jwt.PyJWK(dict(entry))
    except Exception:
        # pyjwt's messages can quote the key material; a secret (oct) key must not reach the log.
        raise ValueError("unsupported key type or invalid key parameters") from None
    if jwk.algorithm_name not in JWK_ALGORITHMS:
        raise ValueError(f"algorithm {jwk.algorithm_name} not accepted")
    key = VerificationKey(jwk.key, [jwk.algorithm_name])
    try:
        _check_strength(key, "key")
    except ConfigError as exc:
        raise ValueError(str(exc)) from None
    return key
