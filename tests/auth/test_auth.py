"""Optional authentication (API keys, bearer JWTs): real servers for the behaviour, auth.py directly for the details."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePrivateKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from scoring_runtime.auth import watched_file
from scoring_runtime.auth.authenticator import authenticator, parse_key_file
from scoring_runtime.auth.tokens import parse_jwks
from scoring_runtime.config import Settings, load_settings
from scoring_runtime.errors import ConfigError, Unauthorized
from tests.conftest import ServerFactory
from tests.helpers import SCRIPTS, Server, clean_env

AUDIENCE = "scoring"
ISSUER = "https://issuer.example"
PRIMARY, SECONDARY = "primary-key-0123", "secondary-key-4567"
SECRET = "an-hs256-secret-of-at-least-32-bytes"
HEALTH = ("/", "/live", "/ready", "/v2/health/live", "/v2/health/ready")


@dataclass(frozen=True)
class Keys:
    rsa: RSAPrivateKey
    ec: EllipticCurvePrivateKey
    other_rsa: RSAPrivateKey


@pytest.fixture(scope="module")
def keys() -> Keys:
    return Keys(
        rsa.generate_private_key(65537, 2048),
        ec.generate_private_key(ec.SECP256R1()),
        rsa.generate_private_key(65537, 2048),
    )


def public_pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def claims(**changes: Any) -> dict[str, Any]:
    """Valid claims for the servers that check audience and issuer; a change to None drops the claim."""
    now = int(time.time())
    base: dict[str, Any] = {"sub": "client", "aud": AUDIENCE, "iss": ISSUER, "iat": now, "exp": now + 300, **changes}
    return {name: value for name, value in base.items() if value is not None}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hs256_by_hand(payload: dict[str, Any] | bytes, secret: bytes, header: bytes = b'{"alg":"HS256"}') -> str:
    """An HS256 token signed with any bytes: pyjwt refuses to sign with a PEM key, which is the attack we test."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    signing_input = f"{_b64(header)}.{_b64(body)}"
    return f"{signing_input}.{_b64(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest())}"


def unsigned(payload: dict[str, Any]) -> str:
    header = b'{"alg":"none","typ":"JWT"}'
    return f"{_b64(header)}.{_b64(json.dumps(payload).encode())}."


def bearer(credentials: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {credentials}"}


def jwks(**entries: tuple[Any, str]) -> str:
    """A JWKS document of public keys by kid, from (private key, alg) pairs."""
    documents = []
    for kid, (private, alg) in entries.items():
        make = RSAAlgorithm if isinstance(private, rsa.RSAPrivateKey) else ECAlgorithm
        documents.append({**make.to_jwk(private.public_key(), as_dict=True), "kid": kid, "alg": alg, "use": "sig"})
    return json.dumps({"keys": documents})


def assert_401(response: Any, description: str | None) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-ms-run-function-failed"] == "False"
    if description is None:
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json()["message"].startswith("Authentication required: send the header 'Authorization: Bearer")
    else:
        expected = f'Bearer error="invalid_token", error_description="{description}"'
        assert response.headers["www-authenticate"] == expected
        assert response.json() == {"message": f"Invalid credentials: {description}"}


def _serving(env: dict[str, str], folder: Path) -> Iterator[Server]:
    """A module-wide server for returns.py with `env`; stopped when the module's tests are done."""
    server = Server("--entry_script", str(SCRIPTS / "returns.py"), env=env, log_dir=folder)
    try:
        yield server.wait_ready()
    finally:
        server.stop()


@pytest.fixture(scope="module")
def keyed(keys: Keys, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server for most cases: two API keys and RS256 tokens with audience and issuer checked."""
    folder = tmp_path_factory.mktemp("keyed")
    (folder / "rsa.pem").write_bytes(public_pem(keys.rsa))
    env = clean_env(
        SCORING_AUTH_KEYS=f"{PRIMARY},{SECONDARY}",
        SCORING_JWT_PUBLIC_KEY_FILE=str(folder / "rsa.pem"),
        SCORING_JWT_AUDIENCE=AUDIENCE,
        SCORING_JWT_ISSUER=ISSUER,
    )
    yield from _serving(env, folder)


@pytest.mark.slow
def test_no_auth_configured_leaves_score_open(serve: ServerFactory) -> None:
    server = serve("returns.py")
    assert server.post("/score", content="int").json() == 7
    assert server.post("/score", content="int", headers=bearer("anything")).json() == 7
    assert "Authentication" not in server.log()


@pytest.mark.slow
def test_primary_and_secondary_keys_are_accepted(keyed: Server) -> None:
    for key in (PRIMARY, SECONDARY):
        assert keyed.post("/score", content="int", headers=bearer(key)).json() == 7
    # The scheme is case-insensitive; extra spaces before the key do not matter.
    assert keyed.post("/score", content="int", headers={"Authorization": f"bEaReR   {PRIMARY}"}).json() == 7
    log = keyed.wait_for_log("POST /score 200")
    assert "Authentication required on /score: API keys (2 from SCORING_AUTH_KEYS); JWTs (RS256 public key" in log
    assert PRIMARY not in log and SECONDARY not in log


@pytest.mark.slow
def test_wrong_or_missing_key_is_401_with_a_challenge(keyed: Server) -> None:
    assert_401(keyed.post("/score", content="int"), None)
    assert_401(keyed.post("/score", content="int", headers={"Authorization": f"Basic {PRIMARY}"}), None)
    assert_401(keyed.post("/score", content="int", headers={"Authorization": "Bearer"}), None)
    assert_401(keyed.get("/score", headers=bearer(PRIMARY + "x")), "the key is not valid")
    assert_401(keyed.post("/score", content="int", headers=bearer(PRIMARY[:-1])), "the key is not valid")
    assert "POST /score 401" in keyed.wait_for_log("POST /score 401")


@pytest.mark.slow
def test_options_and_head_on_score_need_credentials_without_cors(keyed: Server) -> None:
    assert_401(keyed.request("OPTIONS", "/score"), None)
    assert keyed.request("OPTIONS", "/score", headers=bearer(PRIMARY)).status_code == 200
    head = keyed.request("HEAD", "/score")
    assert (head.status_code, head.headers["www-authenticate"]) == (401, "Bearer")
    assert keyed.request("HEAD", "/score", headers=bearer(PRIMARY)).status_code == 405  # as without auth


@pytest.mark.slow
def test_rs256_token_from_the_public_key_file_is_accepted(keyed: Server, keys: Keys) -> None:
    token = jwt.encode(claims(), keys.rsa, algorithm="RS256")
    assert keyed.post("/score", content="dict", headers=bearer(token)).json() == {"a": 1, "b": [1, 2], "c": "é"}
    # Within the default leeway of 30 s, a token that expired a moment ago still passes.
    late = jwt.encode(claims(exp=int(time.time()) - 5), keys.rsa, algorithm="RS256")
    assert keyed.post("/score", content="int", headers=bearer(late)).status_code == 200


BAD_TOKENS: dict[str, tuple[Callable[[Keys], str], str]] = {
    "alg none": (lambda k: unsigned(claims()), "the token's algorithm is not accepted"),
    "algorithm confusion (HS256 signed with the public PEM)": (
        lambda k: hs256_by_hand(claims(), public_pem(k.rsa)),
        "the token's algorithm is not accepted",
    ),
    "expired": (
        lambda k: jwt.encode(claims(exp=int(time.time()) - 120), k.rsa, algorithm="RS256"),
        "the token has expired",
    ),
    "nbf in the future": (
        lambda k: jwt.encode(claims(nbf=int(time.time()) + 120), k.rsa, algorithm="RS256"),
        "the token is not valid yet",
    ),
    "wrong audience": (
        lambda k: jwt.encode(claims(aud="another-service"), k.rsa, algorithm="RS256"),
        "the token is for another audience",
    ),
    "no audience": (lambda k: jwt.encode(claims(aud=None), k.rsa, algorithm="RS256"), "the token has no aud claim"),
    "wrong issuer": (
        lambda k: jwt.encode(claims(iss="https://evil.example"), k.rsa, algorithm="RS256"),
        "the token is from another issuer",
    ),
    "wrong key": (
        lambda k: jwt.encode(claims(), k.other_rsa, algorithm="RS256"),
        "the token's signature does not verify",
    ),
    "ES256 instead of RS256": (
        lambda k: jwt.encode(claims(), k.ec, algorithm="ES256"),
        "the token's algorithm is not accepted",
    ),
    "missing exp": (lambda k: jwt.encode(claims(exp=None), k.rsa, algorithm="RS256"), "the token has no exp claim"),
    "garbage with dots": (lambda k: "not.a.token", "the token is malformed"),
    "garbage base64": (lambda k: f"{_b64(b'{')}.{_b64(b'[')}.{_b64(b'x')}", "the token is malformed"),
    "garbage": (lambda k: "garbage" * 100, "the key is not valid"),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(BAD_TOKENS))
def test_bad_tokens_are_401(keyed: Server, keys: Keys, case: str) -> None:
    make, description = BAD_TOKENS[case]
    assert_401(keyed.post("/score", content="int", headers=bearer(make(keys))), description)


@pytest.mark.slow
def test_health_routes_stay_open_with_auth_on(keyed: Server) -> None:
    for path in HEALTH:
        assert keyed.get(path).status_code == 200, path


@pytest.mark.slow
def test_swagger_is_open_by_default(keyed: Server) -> None:
    response = keyed.get("/swagger.json")
    assert response.status_code == 200 and response.json()["securityDefinitions"]["Bearer"]["in"] == "header"


@pytest.mark.slow
def test_hs256_token_from_the_secret_is_accepted(serve: ServerFactory) -> None:
    server = serve("returns.py", env={"SCORING_JWT_SECRET": SECRET})
    token = jwt.encode(claims(aud=None, iss=None), SECRET, algorithm="HS256")
    assert server.post("/score", content="int", headers=bearer(token)).json() == 7
    # Without SCORING_JWT_AUDIENCE / ISSUER, those claims are not checked.
    other = jwt.encode(claims(aud="whatever", iss="anyone"), SECRET, algorithm="HS256")
    assert server.post("/score", content="int", headers=bearer(other)).json() == 7
    wrong = jwt.encode(claims(), SECRET + "!", algorithm="HS256")
    assert_401(server.post("/score", content="int", headers=bearer(wrong)), "the token's signature does not verify")
    assert_401(server.post("/score", content="int", headers=bearer(PRIMARY)), "the token is malformed")
    assert SECRET not in server.log()


@pytest.mark.slow
def test_es256_token_from_the_public_key_file_is_accepted(serve: ServerFactory, keys: Keys, tmp_path: Path) -> None:
    (tmp_path / "ec.pem").write_bytes(public_pem(keys.ec))
    server = serve("returns.py", env={"SCORING_JWT_PUBLIC_KEY_FILE": str(tmp_path / "ec.pem")})
    token = jwt.encode(claims(), keys.ec, algorithm="ES256")
    assert server.post("/score", content="int", headers=bearer(token)).json() == 7
    assert_401(
        server.post("/score", content="int", headers=bearer(jwt.encode(claims(), keys.rsa, algorithm="RS256"))),
        "the token's algorithm is not accepted",
    )
    assert "Authentication required on /score: JWTs (ES256 public key" in server.log()


@pytest.fixture(scope="module")
def jwks_server(keys: Keys, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """JWKS tokens, swagger protected, CORS on."""
    folder = tmp_path_factory.mktemp("jwks")
    (folder / "jwks.json").write_text(jwks(rsa1=(keys.rsa, "RS256"), ec1=(keys.ec, "ES256")))
    env = clean_env(
        SCORING_JWT_JWKS_FILE=str(folder / "jwks.json"),
        SCORING_AUTH_SWAGGER="true",
        AML_CORS_ORIGINS="https://app.example",
    )
    yield from _serving(env, folder)


@pytest.mark.slow
def test_jwks_picks_the_key_by_kid(jwks_server: Server, keys: Keys) -> None:
    for kid, key, alg in (("rsa1", keys.rsa, "RS256"), ("ec1", keys.ec, "ES256")):
        token = jwt.encode(claims(), key, algorithm=alg, headers={"kid": kid})
        assert jwks_server.post("/score", content="int", headers=bearer(token)).json() == 7, kid
    cases = {
        "the token's key id (kid) is not in the key set": [
            jwt.encode(claims(), keys.rsa, algorithm="RS256", headers={"kid": "gone"}),
            jwt.encode(claims(), keys.rsa, algorithm="RS256"),
        ],
        "the token's algorithm is not accepted": [
            jwt.encode(claims(), keys.ec, algorithm="ES256", headers={"kid": "rsa1"})
        ],
        "the token's signature does not verify": [
            jwt.encode(claims(), keys.other_rsa, algorithm="RS256", headers={"kid": "rsa1"})
        ],
    }
    for description, tokens in cases.items():
        for token in tokens:
            assert_401(jwks_server.post("/score", content="int", headers=bearer(token)), description)


@pytest.mark.slow
def test_swagger_needs_credentials_when_protected(jwks_server: Server, keys: Keys) -> None:
    assert_401(jwks_server.get("/swagger.json"), None)
    token = jwt.encode(claims(), keys.ec, algorithm="ES256", headers={"kid": "ec1"})
    assert jwks_server.get("/swagger.json", headers=bearer(token)).status_code == 200
    for path in HEALTH:
        assert jwks_server.get(path).status_code == 200, path


@pytest.mark.slow
def test_cors_preflight_is_answered_without_credentials(jwks_server: Server) -> None:
    origin = {"Origin": "https://app.example"}
    preflight = {**origin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"}
    response = jwks_server.request("OPTIONS", "/score", headers=preflight)
    assert (response.status_code, response.headers["access-control-allow-origin"]) == (200, "https://app.example")
    assert response.headers["access-control-allow-headers"] == "authorization"
    # The 401 itself carries the CORS headers, so that the page's script can read it.
    refused = jwks_server.post("/score", content="int", headers=origin)
    assert (refused.status_code, refused.headers["access-control-allow-origin"]) == (401, "https://app.example")


def _wait_until(accepted: Callable[[], bool], timeout: float = 15.0) -> float:
    start = time.monotonic()
    while not accepted():
        assert time.monotonic() - start < timeout, "not rotated in time"
        time.sleep(0.1)
    return time.monotonic() - start


@pytest.mark.slow
def test_key_file_and_jwks_rotate_without_restart(serve: ServerFactory, keys: Keys, tmp_path: Path) -> None:
    key_file, jwks_file = tmp_path / "keys.txt", tmp_path / "jwks.json"
    key_file.write_text(f"\n  {PRIMARY}  \n\n{SECONDARY}\n")
    jwks_file.write_text(jwks(k1=(keys.rsa, "RS256")))
    env = {"SCORING_AUTH_KEY_FILE": str(key_file), "SCORING_JWT_JWKS_FILE": str(jwks_file)}
    server = serve("returns.py", workers=2, env=env)
    old_token = jwt.encode(claims(), keys.rsa, algorithm="RS256", headers={"kid": "k1"})
    new_token = jwt.encode(claims(), keys.ec, algorithm="ES256", headers={"kid": "k2"})

    def status(credentials: str) -> int:
        return server.post("/score", content="int", headers=bearer(credentials)).status_code

    assert [status(PRIMARY), status(SECONDARY), status(old_token)] == [200, 200, 200]
    assert status("new-primary-key") == 401 and status(new_token) == 401

    key_file.write_text("new-primary-key\n" + PRIMARY + "\n")  # the old secondary is retired
    jwks_file.write_text(jwks(k2=(keys.ec, "ES256")))

    def rotated() -> bool:
        return all(
            status(credentials) == expected
            for _ in range(4)
            for credentials, expected in (
                ("new-primary-key", 200),
                (SECONDARY, 401),
                (new_token, 200),
                (old_token, 401),
            )
        )

    assert _wait_until(rotated) < 5.0  # checked about once a second in each worker
    assert status(PRIMARY) == 200
    assert "SCORING_AUTH_KEY_FILE: reloaded" in server.wait_for_log("SCORING_JWT_JWKS_FILE: reloaded")


BAD_CONFIGS: dict[str, tuple[dict[str, str], str]] = {
    "unreadable key file": (
        {"SCORING_AUTH_KEY_FILE": "/nonexistent/keys.txt"},
        "SCORING_AUTH_KEY_FILE: /nonexistent/keys.txt: No such file or directory",
    ),
    "bad PEM": ({"SCORING_JWT_PUBLIC_KEY_FILE": "{tmp}/bad.pem"}, "not a PEM public key"),
    "secret and public key": (
        {"SCORING_JWT_SECRET": SECRET, "SCORING_JWT_PUBLIC_KEY_FILE": "{tmp}/bad.pem"},
        "SCORING_JWT_SECRET and SCORING_JWT_PUBLIC_KEY_FILE are both set",
    ),
    "short secret": ({"SCORING_JWT_SECRET": "short-secret"}, "an HS256 key must be at least 32 bytes long, got 12"),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(BAD_CONFIGS))
def test_bad_auth_configuration_stops_startup_with_one_line(
    serve: ServerFactory, workers: int, tmp_path: Path, case: str
) -> None:
    (tmp_path / "bad.pem").write_text("-----BEGIN PUBLIC KEY-----\nnot base64\n-----END PUBLIC KEY-----\n")
    env, expected = BAD_CONFIGS[case]
    server = serve("returns.py", workers=workers, env={k: v.format(tmp=tmp_path) for k, v in env.items()}, wait=False)
    assert server.wait_exit(60) == 3
    log = server.log()
    lines = [line for line in log.splitlines() if "configuration error" in line]
    assert len(lines) == 1 and expected in lines[0], log
    assert "Traceback" not in log and "short-secret" not in log


# In-process: the details of auth.py, tokens.py and the watched file.


def _settings(**values: Any) -> Settings:
    return load_settings(values, environ={})[0]


def _check(settings: Settings, credentials: str) -> str | None:
    """None when accepted, else the error description of the 401."""
    try:
        authenticator(settings).check(f"Bearer {credentials}")
    except Unauthorized as exc:
        return exc.headers["WWW-Authenticate"].partition('error_description="')[2].rstrip('"') or "(none)"
    return None


def test_key_settings() -> None:
    assert _settings(auth_keys=" a, ,b,").auth_keys == ("a", "b")
    with pytest.raises(ConfigError, match="--auth_keys: expected at most 2 keys"):
        _settings(auth_keys="a,b,c")
    # Secrets stay out of the settings' repr, which may end up in a log or a traceback.
    shown = repr(_settings(auth_keys=PRIMARY, jwt_secret=SECRET))
    assert PRIMARY not in shown and SECRET not in shown


def test_key_file_format() -> None:
    assert parse_key_file(b"\n  one \r\n\n\ttwo\n") == (b"one", b"two")
    with pytest.raises(ValueError, match="no key"):
        parse_key_file(b" \n\n")
    with pytest.raises(ValueError, match="at most 2 keys"):
        parse_key_file(b"a\nb\nc\n")


def test_non_ascii_key_matches_the_bytes_the_client_sent() -> None:
    auth = authenticator(_settings(auth_keys="clé-1"))
    auth.check("Bearer " + "clé-1".encode().decode("latin-1"))  # as the ASGI server hands the header over
    with pytest.raises(Unauthorized):
        auth.check("Bearer clé-1")


def test_crafted_tokens_are_401_never_an_exception() -> None:
    # Older pyjwt releases raise RecursionError, OverflowError or TypeError for some of these.
    settings = _settings(jwt_secret=SECRET, jwt_issuer=ISSUER)
    secret = SECRET.encode()
    now = int(time.time())
    nested = b'{"alg":"HS256","x":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    cases = {
        hs256_by_hand({"exp": now - 10, "iss": ISSUER}, secret): None,  # within the leeway
        hs256_by_hand({"exp": now + 60, "iss": ISSUER, "iat": now + 3600}, secret): "the token is not valid yet",
        hs256_by_hand(b'{"exp": 1e999, "iss": "https://issuer.example"}', secret): "the token is malformed",
        hs256_by_hand(b'{"exp": [1], "iss": "https://issuer.example"}', secret): "the token is malformed",
        hs256_by_hand({"exp": now + 60, "iss": ISSUER}, secret, nested): "the token is malformed",
        hs256_by_hand(b"[1]", secret): "the token is malformed",
        "..": "the token is malformed",
        "\x00.\xff.\x7f": "the token is malformed",
    }
    for token, expected in cases.items():
        assert _check(settings, token) == expected, token[:80]
    # The exact reason differs between pyjwt releases; a 401 it is in all of them.
    assert _check(settings, hs256_by_hand({"exp": now + 60, "iss": [ISSUER]}, secret)) is not None


def test_configuration_errors(keys: Keys, tmp_path: Path) -> None:
    small = rsa.generate_private_key(65537, 1024)
    for name, key in (("small.pem", small), ("p384.pem", ec.generate_private_key(ec.SECP384R1()))):
        (tmp_path / name).write_bytes(public_pem(key))
    (tmp_path / "keys.txt").write_text("a\n")
    (tmp_path / "bad.json").write_text("{")
    (tmp_path / "empty.json").write_text('{"keys": [{"kty": "RSA", "kid": "x", "n": "AQAB"}]}')
    cases = {
        "SCORING_AUTH_KEYS and SCORING_AUTH_KEY_FILE are both set": {
            "auth_keys": "a",
            "auth_key_file": str(tmp_path / "keys.txt"),
        },
        "an RSA key must be at least 2048 bits long, got 1024": {"jwt_public_key_file": str(tmp_path / "small.pem")},
        "expected an RSA key (RS256) or an EC P-256 key (ES256)": {"jwt_public_key_file": str(tmp_path / "p384.pem")},
        "SCORING_JWT_JWKS_FILE: " + str(tmp_path / "bad.json") + ": not a JSON document": {
            "jwt_jwks_file": str(tmp_path / "bad.json")
        },
        "no usable signing key with a kid": {"jwt_jwks_file": str(tmp_path / "empty.json")},
        "SCORING_JWT_AUDIENCE is set, but no key to check tokens with": {"jwt_audience": "x"},
        "SCORING_JWT_ISSUER is set, but no key to check tokens with": {"auth_keys": "a", "jwt_issuer": "x"},
        "SCORING_AUTH_SWAGGER is true but no key or token key is configured": {"auth_swagger": "true"},
    }
    for message, values in cases.items():
        with pytest.raises(ConfigError) as raised:
            authenticator(_settings(**values))
        assert message in str(raised.value), values
    assert not authenticator(_settings()).enabled


def test_jwks_keeps_only_usable_signing_keys(keys: Keys, caplog: pytest.LogCaptureFixture) -> None:
    good = json.loads(jwks(k=(keys.rsa, "RS256")))["keys"][0]
    private = {**RSAAlgorithm.to_jwk(keys.rsa, as_dict=True), "kid": "private"}
    secret = {"kty": "oct", "k": _b64(b"tiny"), "kid": "short-secret"}
    document = {
        "keys": [
            good,
            {**good, "kid": None},
            {**good, "kid": "enc", "use": "enc"},
            {**good, "kid": "none", "alg": "none"},
            {**good, "kid": "listalg", "alg": ["RS256"]},
            {"kty": "weird", "kid": "weird"},
            private,
            secret,
        ]
    }
    with caplog.at_level(logging.WARNING, "azmlinfsrv"):
        parsed = parse_jwks(json.dumps(document).encode())
    assert list(parsed) == ["k"] and parsed["k"].algorithms == ["RS256"]
    assert len(caplog.records) == 7
    assert _b64(b"tiny") not in caplog.text and "an HS256 key must be at least 32 bytes long" in caplog.text


def test_watched_file_keeps_the_last_good_content(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(watched_file, "CHECK_INTERVAL_S", 0.0)  # look at the file on every call
    path = tmp_path / "keys.txt"
    path.write_text("first-key\n")
    watched = watched_file.WatchedFile(str(path), parse_key_file, "SCORING_AUTH_KEY_FILE")
    with caplog.at_level(logging.INFO, "azmlinfsrv"):
        path.write_text("")
        assert [watched.current() for _ in range(3)] == [(b"first-key",)] * 3
        path.unlink()
        assert [watched.current() for _ in range(3)] == [(b"first-key",)] * 3
        path.write_text("second-key\n")
        assert watched.current() == (b"second-key",)
    messages = [(record.levelname, record.getMessage()) for record in caplog.records]
    assert messages == [
        ("ERROR", f"SCORING_AUTH_KEY_FILE: {path}: no key in the file; keeping the previous content"),
        ("ERROR", f"SCORING_AUTH_KEY_FILE: {path}: No such file or directory; keeping the previous content"),
        ("INFO", f"SCORING_AUTH_KEY_FILE: reloaded {path}"),
    ]


def test_challenge_descriptions_are_quotable() -> None:
    header = Unauthorized("m", 'a "quoted" \\ line\nnext').headers["WWW-Authenticate"]
    assert header == 'Bearer error="invalid_token", error_description="a quoted  linenext"'


def test_token_libraries_are_not_imported_unless_tokens_are_configured() -> None:
    # pyjwt and cryptography cost about 0.1 s of start-up; most deployments check no tokens.
    code = "import sys, scoring_runtime.serving.workers; print('jwt' in sys.modules, 'cryptography' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "False"]
