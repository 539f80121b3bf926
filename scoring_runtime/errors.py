"""The one exception family of scoring_runtime.

ScoringRuntimeError
├── StartupError                 the server cannot start: exit code 3, nothing served
│   ├── ConfigError              a setting has an invalid value
│   ├── ScriptLoadError          score.py cannot be found, imported, validated or initialised
│   └── ModelLoadError           a model folder cannot be served: ambiguous, unreadable, or a framework missing
│       └── ModelRefused         a model file holds what the operator did not trust, or fails its pinned digest
├── ModelNotFoundError           get_model_path() was asked for a model that is not deployed (also a LookupError)
├── StreamAborted                a streamed response failed after its status was sent: the connection is cut
└── HTTPError                    answered to the client as {"message": ...}; app.py turns it into a response
    ├── BadRequest               400: the request body or query cannot be turned into run() arguments
    ├── Unauthorized             401 with WWW-Authenticate: authentication is on and the request's key or token fails
    ├── NotFound                 404
    ├── MethodNotAllowed         405
    ├── UnsupportedMediaType     415
    ├── PayloadTooLarge          413: the body is over SCORING_MAX_REQUEST_BYTES
    ├── HeaderTooLarge           431: a request-id header is over 100 characters
    ├── ClientClosedRequest      499: the client went away before its body was complete (nobody reads the answer)
    ├── Overloaded               503 with Retry-After: every run slot is busy and the wait queue is full
    ├── WorkerRestarting         503 with Retry-After: the request was waiting in a worker that is being replaced
    ├── ModelUnavailable         503: a model of a multi-model folder failed to load, or is being unloaded
    ├── RunFailed                500: run() raised (x-ms-run-function-failed: True)
    ├── ScoringTimeout           500: run() took longer than SCORING_TIMEOUT_MS (x-ms-run-function-failed: True)
    ├── WorkerTimeout            500: run() was still running after WORKER_TIMEOUT; its worker is replaced
    └── InternalError            500: the server failed around run(), e.g. its result cannot be encoded
"""

from __future__ import annotations

from http import HTTPStatus


class ScoringRuntimeError(Exception):
    """Base of every error scoring_runtime raises on purpose."""


# The exit status of a server that could not start (as the reference's, and gunicorn's for a worker that cannot boot).
STARTUP_FAILURE_EXIT = 3


class StartupError(ScoringRuntimeError):
    """The server cannot start; the process exits with STARTUP_FAILURE_EXIT."""


class ConfigError(StartupError):
    """A setting has a value that cannot be used; the message names the setting."""


class ScriptLoadError(StartupError):
    """The entry script could not be found, imported, validated or initialised."""


class ModelLoadError(StartupError):
    """A model folder or file cannot be served; the message says what was found and what to do."""


class ModelRefused(ModelLoadError):
    """A model file names something outside what the operator trusts (a pickle's class or function, a .skops type),
    or its digest is not the pinned one; the message names the file and the refused name."""


class ModelNotFoundError(ScoringRuntimeError, LookupError):
    """No deployed model matches the requested name and version."""


class StreamAborted(ScoringRuntimeError):
    """A streamed body failed after the response started; raised to the server so that it drops the connection.

    The cause is logged where it happens, so the server's own report of this exception is filtered out (log.py).
    """


class HTTPError(ScoringRuntimeError):
    """An error that is answered to the client as `{"message": ...}`."""

    status_code: int = HTTPStatus.INTERNAL_SERVER_ERROR
    run_function_failed: bool = False

    def __init__(self, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or {}


class BadRequest(HTTPError):
    status_code = HTTPStatus.BAD_REQUEST


class Unauthorized(HTTPError):
    """A 401 with an RFC 6750 challenge: a plain `Bearer` when no bearer credentials came, `invalid_token` otherwise."""

    status_code = HTTPStatus.UNAUTHORIZED

    def __init__(self, message: str, description: str | None = None) -> None:
        challenge = "Bearer"
        if description is not None:
            challenge = f'Bearer error="invalid_token", error_description="{_quotable(description)}"'
        super().__init__(message, {"WWW-Authenticate": challenge})


def _quotable(text: str) -> str:
    # RFC 6750 allows only printable ASCII without `"` and `\` in error_description.
    return "".join(char for char in text if " " <= char <= "~" and char not in '"\\')


class NotFound(HTTPError):
    status_code = HTTPStatus.NOT_FOUND


class MethodNotAllowed(HTTPError):
    status_code = HTTPStatus.METHOD_NOT_ALLOWED


class UnsupportedMediaType(HTTPError):
    status_code = HTTPStatus.UNSUPPORTED_MEDIA_TYPE


class PayloadTooLarge(HTTPError):
    status_code = HTTPStatus.REQUEST_ENTITY_TOO_LARGE

    def __init__(self, limit: int) -> None:
        super().__init__(f"Request body is larger than the limit of {limit} bytes")


class Overloaded(HTTPError):
    status_code = HTTPStatus.SERVICE_UNAVAILABLE

    def __init__(self, waiting: int) -> None:
        super().__init__(
            f"The server is busy: {waiting} requests are already waiting to be scored. Retry later.",
            {"Retry-After": "1"},
        )


class WorkerRestarting(HTTPError):
    status_code = HTTPStatus.SERVICE_UNAVAILABLE

    def __init__(self) -> None:
        super().__init__("The worker is being replaced. Retry the request.", {"Retry-After": "1"})


class ModelUnavailable(HTTPError):
    """A known model that cannot serve now: its load failed (the message says why; a later request tries again) or
    it was unloaded through the repository API."""

    status_code = HTTPStatus.SERVICE_UNAVAILABLE


class HeaderTooLarge(HTTPError):
    status_code = HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE


class ClientClosedRequest(HTTPError):
    """The client closed the connection while sending its body. The answer reaches nobody: it exists so that the
    access log shows what happened (499, as nginx logs it) instead of a traceback and a 500 that was never sent."""

    status_code = 499

    def __init__(self) -> None:
        super().__init__("The client closed the connection before the request body was complete")


RUN_FAILED_MESSAGE = "An unexpected error occurred in scoring script. Check the logs for more info."
INTERNAL_ERROR_MESSAGE = "An unexpected internal error occurred. Check the logs for more info."


class RunFailed(HTTPError):
    run_function_failed = True

    def __init__(self) -> None:
        super().__init__(RUN_FAILED_MESSAGE)


class ScoringTimeout(HTTPError):
    run_function_failed = True

    def __init__(self, timeout_ms: int) -> None:
        super().__init__(f"Scoring timeout after {timeout_ms} ms")


class WorkerTimeout(HTTPError):
    run_function_failed = True

    def __init__(self, timeout_s: int, replacing: bool = True) -> None:
        replaced = "; the worker is being replaced" if replacing else ""
        super().__init__(f"run() did not finish within WORKER_TIMEOUT ({timeout_s} s){replaced}")


class InternalError(HTTPError):
    def __init__(self) -> None:
        super().__init__(INTERNAL_ERROR_MESSAGE)
