"""The one place errors become responses: `{"message": ...}` with the reference's x-ms-run-function-failed header,
or `{"error": ...}` on the Open Inference Protocol's and TensorFlow Serving's routes, as those protocols answer."""

from __future__ import annotations

import json
from collections.abc import Mapping

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from scoring_runtime.errors import HTTPError, MethodNotAllowed, NotFound

FAILED_HEADER = b"x-ms-run-function-failed"
NOT_FOUND_MESSAGE = (
    "The requested URL was not found on the server. "
    "If you entered the URL manually please check your spelling and try again."
)
ROUTING_405_MESSAGE = "The method is not allowed for the requested URL."


# The paths of the protocols whose error body is `{"error": message}`.
PROTOCOL_PREFIXES = ("/v2/", "/v1/models/")


def error_response(exc: HTTPError, path: str = "") -> Response:
    """An HTTPError as the client gets it."""
    if path.startswith(PROTOCOL_PREFIXES) or path == "/v2":
        body = json.dumps({"error": exc.message})
        return Response(body, status_code=exc.status_code, headers=exc.headers, media_type="application/json")
    return _json_error(exc.status_code, exc.message, exc.run_function_failed, exc.headers)


def options_response(allow: str) -> Response:
    return Response(status_code=200, headers={"Allow": allow}, media_type="text/html")


def _json_error(status_code: int, message: str, failed: bool, headers: Mapping[str, str] | None = None) -> Response:
    response = Response(
        json.dumps({"message": message}), status_code=status_code, headers=headers, media_type="application/json"
    )
    response.raw_headers.append((FAILED_HEADER, b"True" if failed else b"False"))
    return response


async def handle_http_error(request: Request, exc: Exception) -> Response:
    """Starlette's exception handler for HTTPError, raised by any endpoint."""
    assert isinstance(exc, HTTPError)
    return error_response(exc, request.scope["path"])


async def handle_routing_error(request: Request, exc: Exception) -> Response:
    """Starlette's own 404 and 405, in the reference's words and shape."""
    assert isinstance(exc, HTTPException)
    path = request.scope["path"]
    if exc.status_code == 404:
        return error_response(NotFound(NOT_FOUND_MESSAGE), path)
    if exc.status_code == 405:
        return error_response(MethodNotAllowed(ROUTING_405_MESSAGE, dict(exc.headers or {})), path)
    return _json_error(exc.status_code, exc.detail, False, exc.headers)
