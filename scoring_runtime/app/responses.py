"""The one place errors become responses: `{"message": ...}` with the reference's x-ms-run-function-failed header."""

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


def error_response(exc: HTTPError) -> Response:
    """An HTTPError as the client gets it."""
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
    return error_response(exc)


async def handle_routing_error(request: Request, exc: Exception) -> Response:
    """Starlette's own 404 and 405, in the reference's words and shape."""
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return error_response(NotFound(NOT_FOUND_MESSAGE))
    if exc.status_code == 405:
        return error_response(MethodNotAllowed(ROUTING_405_MESSAGE, dict(exc.headers or {})))
    return _json_error(exc.status_code, exc.detail, False, exc.headers)
