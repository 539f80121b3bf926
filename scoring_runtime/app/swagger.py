"""The OpenAPI documents served at /swagger.json, built once per process from run()'s inference-schema schemas.

The content and key order are the reference's (its two JSON templates), with three fixes recorded in
docs/compatibility.md: the documents are built as data, so quotes or backslashes in the service name cannot break
them; a path prefix of "/" means no prefix; the `version` parameter lists every version served, as strings.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scoring_runtime.contract import schema
from scoring_runtime.errors import NotFound, StartupError

logger = logging.getLogger("azmlinfsrv.swagger")

DEFAULT_VERSION = "2"
# Each served document answers to its version and that version's aliases.
ALIASES = {"2": ("2", "2.0"), "3": ("3", "3.0"), "3.1": ("3.1",)}
_SCHEMA_VERSION = {"2": "2.0", "3": "3.0", "3.1": "3.1"}  # inference-schema's spelling
# A user's file in the app root replaces the generated document; for version 2 the first one found wins.
USER_FILES = {"2": ("swagger.json", "swagger2.json"), "3": ("swagger3.json",), "3.1": ("swagger3.1.json",)}
PLACEHOLDER = {"type": "object", "example": {}}

_JSON = "application/json"
_FAILED = "The service failed to execute due to an error."
_BEARER = {"type": "apiKey", "name": "Authorization", "in": "header", "description": "For example: Bearer abc123"}
_ERROR_SCHEMA = {"type": "object", "properties": {"message": {"type": "string"}}}
_HEALTH = "Simple health check endpoint to ensure the service is up at any given point."
_HEALTHY = "If service is up and running, this response will be returned with the content 'Healthy'"
_RUN = "Run web service's model and get the prediction output"
_INPUT = "The input payload for executing the real-time machine learning service."
_OUTPUT = "The service processed the input correctly and provided a result prediction, if applicable."


@dataclass(frozen=True)
class Swaggers:
    """The serialised document of each served version, by alias."""

    documents: dict[str, bytes]
    versions: tuple[str, ...]  # served versions, sorted as strings

    def get(self, version: str) -> bytes:
        document = self.documents.get(version)
        if document is not None:
            return document
        served = ", ".join(self.versions)
        if not any(version in aliases for aliases in ALIASES.values()):
            raise NotFound(f"Swagger version [{version}] is not valid. Supported versions: [{served}].")
        raise NotFound(
            f"Swagger version [{version}] is not supported for the scoring script. "
            f"Supported swagger versions: [{served}]."
        )


@dataclass(frozen=True)
class ServiceInfo:
    name: str
    version: str
    path_prefix: str  # "" or "/segment[/segment...]"


def build(
    run: Callable[..., Any],
    info: ServiceInfo,
    app_root: Path,
    model_schemas: tuple[dict[str, Any], dict[str, Any]] | None = None,
) -> Swaggers:
    """Every document this script's server serves: the user's files first, then generated ones; without a script,
    from the served model's own schema (`model_schemas`: the /score body's and the answer's)."""
    user = {version: _user_document(app_root, version) for version in ALIASES}
    if model_schemas is not None:
        service_input, service_output = model_schemas
        possible = frozenset(_SCHEMA_VERSION.values())
    elif schema.is_decorated(run):
        service_input, service_output, possible = schema.swagger_schemas(run)
    else:
        service_input, service_output, possible = PLACEHOLDER, PLACEHOLDER, frozenset(_SCHEMA_VERSION.values())
    served = sorted(v for v in ALIASES if user[v] is not None or _SCHEMA_VERSION[v] in possible)
    skipped = sorted(set(ALIASES) - set(served))
    enum = sorted(alias for version in served for alias in ALIASES[version])
    documents: dict[str, bytes] = {}
    for version in served:
        document = user[version]
        if document is None:
            make = _openapi2 if version == "2" else _openapi3
            document = make(info, enum, service_input, service_output)
            if version == "3.1":
                document["openapi"] = "3.1.0"
        # The reference serves the stdlib's default serialisation; clients that compare bytes see the same.
        data = json.dumps(document).encode()
        documents.update(dict.fromkeys(ALIASES[version], data))
    if served and skipped:
        logger.info(
            "Swaggers are prepared for versions [%s] and skipped for versions [%s].",
            ", ".join(served),
            ", ".join(skipped),
        )
    elif served:
        logger.info("Swaggers are prepared for the following versions: [%s].", ", ".join(served))
    else:
        logger.info("No swagger is prepared.")
    return Swaggers(documents, tuple(served))


def _user_document(app_root: Path, version: str) -> dict[str, Any] | None:
    for name in USER_FILES[version]:
        path = app_root / name
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise _broken(path, f"cannot be read: {exc}") from None
        try:
            document = json.loads(raw)
        except ValueError as exc:
            raise _broken(path, f"is not valid JSON: {exc}") from None
        if not document:  # `{}` (or another empty value) means "generate it", as in the reference
            continue
        if not isinstance(document, dict):
            raise _broken(path, f"must hold a JSON object, not {type(document).__name__}")
        logger.info("Loaded user's swagger file for version [%s] from %s", version, path)
        return document
    return None


def _broken(path: Path, problem: str) -> StartupError:
    message = f"Swagger file {path} {problem}"
    logger.error(message)
    return StartupError(message)


def _info(info: ServiceInfo) -> dict[str, str]:
    return {
        "title": info.name,
        "description": f"API specification for the Azure Machine Learning service {info.name}",
        "version": info.version,
    }


def _paths(
    prefix: str,
    failed: dict[str, Any],
    healthy: dict[str, Any],
    run_input: dict[str, Any],
    run_output: dict[str, Any],
    version: dict[str, Any],
    document: dict[str, Any],
) -> dict[str, Any]:
    """The three documented routes; each OpenAPI version supplies its own way of writing bodies and parameters."""
    return {
        f"{prefix}/": {
            "get": {
                "operationId": "ServiceHealthCheck",
                "description": _HEALTH,
                "responses": {"200": healthy, "default": failed},
            }
        },
        f"{prefix}/score": {
            "post": {
                "operationId": "RunMLService",
                "description": _RUN,
                "security": [{"Bearer": []}],
                **run_input,
                "responses": {"200": run_output, "default": failed},
            }
        },
        f"{prefix}/swagger.json": {
            "get": {
                "operationId": "GetSwaggerSpec",
                "description": "Get the Swagger specification.",
                "parameters": [version],
                "responses": {"200": document, "default": failed},
            }
        },
    }


def _openapi2(info: ServiceInfo, enum: list[str], service_input: Any, service_output: Any) -> dict[str, Any]:
    def ref(name: str) -> dict[str, str]:
        return {"$ref": f"#/definitions/{name}"}

    body = {"name": "serviceInputPayload", "in": "body", "description": _INPUT, "schema": ref("ServiceInput")}
    paths = _paths(
        info.path_prefix,
        failed={"description": _FAILED, "schema": ref("ErrorResponse")},
        healthy={"description": _HEALTHY, "schema": {"type": "string"}, "examples": {_JSON: "Healthy"}},
        run_input={"parameters": [body]},
        run_output={"description": _OUTPUT, "schema": ref("ServiceOutput")},
        version={"name": "version", "in": "query", "required": False, "type": "string", "enum": enum},
        document={"description": "The Swagger specification.", "schema": {"type": "string"}},
    )
    return {
        "swagger": "2.0",
        "info": _info(info),
        "schemes": ["https"],
        "consumes": [_JSON],
        "produces": [_JSON],
        "securityDefinitions": {"Bearer": _BEARER},
        "paths": paths,
        "definitions": {"ServiceInput": service_input, "ServiceOutput": service_output, "ErrorResponse": _ERROR_SCHEMA},
    }


def _openapi3(info: ServiceInfo, enum: list[str], service_input: Any, service_output: Any) -> dict[str, Any]:
    def content(media_type: str, schema: dict[str, Any]) -> dict[str, Any]:
        return {media_type: {"schema": schema}}

    def ref(name: str) -> dict[str, Any]:
        return content(_JSON, {"$ref": f"#/components/schemas/{name}"})

    version_schema = {"type": "string", "enum": enum}
    paths = _paths(
        info.path_prefix,
        failed={"description": _FAILED, "content": ref("ErrorResponse")},
        healthy={"description": _HEALTHY, "content": content("text/plain", {"type": "string", "example": "Healthy"})},
        run_input={"requestBody": {"description": _INPUT, "content": ref("ServiceInput")}},
        run_output={"description": _OUTPUT, "content": ref("ServiceOutput")},
        version={"name": "version", "in": "query", "required": False, "schema": version_schema},
        document={"description": "The Swagger specification.", "content": content("text/plain", {"type": "string"})},
    )
    return {
        "openapi": "3.0.3",
        "info": _info(info),
        "security": [{"Bearer": []}],
        "paths": paths,
        "components": {
            "schemas": {"ServiceInput": service_input, "ServiceOutput": service_output, "ErrorResponse": _ERROR_SCHEMA},
            "securitySchemes": {"Bearer": _BEARER},
        },
    }
