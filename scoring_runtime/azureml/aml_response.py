"""`AMLResponse`: what a `@rawhttp` run() returns, with the reference's constructor and Flask's Response API.

Scripts import it as `azureml.contrib.services.aml_response` or `azureml_inference_server_http.api.aml_response`
(see `register_azureml_aliases`).
"""

from __future__ import annotations

import json
import logging
import traceback
from collections.abc import AsyncIterator, Mapping
from typing import Any

from starlette.concurrency import iterate_in_threadpool
from starlette.types import Receive, Scope, Send

from scoring_runtime.azureml.flask_response import FlaskResponse
from scoring_runtime.errors import StreamAborted

__all__ = ["AMLResponse"]

logger = logging.getLogger("azmlinfsrv")

_JSON = "application/json"
_HTML = "text/html"
_BODY_TYPES = (str, bytes, bytearray, memoryview)


class AMLResponse(FlaskResponse):
    """A response built by run().

    - `message=None` answers `{}` (JSON); `json_str=True` JSON-encodes `message`; a dict is JSON-encoded too.
    - A str or bytes message is sent as given (`text/html; charset=utf-8` unless the headers say otherwise).
    - A generator, async generator or other iterable of str/bytes chunks is streamed, chunk by chunk.
    - Each header value is split on commas into separate header lines, as the reference does; a Content-Type in
      `response_headers` replaces the default and is sent once.
    - A status of 500 or more, or `run_function_failed=True`, sends `x-ms-run-function-failed: True`.

    After construction it is Flask's Response: see FlaskResponse.
    """

    def __init__(
        self,
        message: Any,
        status_code: int = 200,
        response_headers: Mapping[str, str] | None = None,
        json_str: bool = False,
        run_function_failed: bool = False,
    ) -> None:
        headers = dict(response_headers or {})
        user_type = next((headers.pop(name) for name in list(headers) if name.lower() == "content-type"), None)
        content: Any = None
        media_type = _HTML
        if message is None:
            content, media_type = b"{}", _JSON
        elif json_str or isinstance(message, dict):
            content, media_type = json.dumps(message), _JSON
        elif isinstance(message, _BODY_TYPES):
            content = bytes(message) if isinstance(message, bytearray) else message
        elif hasattr(message, "__aiter__"):
            self.stream = message.__aiter__()
        elif hasattr(message, "__iter__"):
            self.stream = iter(message)
        else:
            raise TypeError(f"AMLResponse cannot send a {type(message).__name__}; give str, bytes, a dict or chunks")
        super().__init__(content, status_code, media_type=None if user_type else media_type)
        if self.stream is not None:
            # Streamed: sent chunked, so without the Content-Length of the empty body Response.__init__ saw.
            self.raw_headers = [(name, value) for name, value in self.raw_headers if name != b"content-length"]
        if user_type:
            self.raw_headers.append((b"content-type", str(user_type).encode("latin-1")))
        failed = run_function_failed or status_code >= 500
        self.raw_headers.append((b"x-ms-run-function-failed", b"True" if failed else b"False"))
        for name, value in headers.items():
            for piece in str(value).split(","):
                self.raw_headers.append((name.lower().encode("latin-1"), piece.strip().encode("latin-1")))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.stream is None:
            await super().__call__(scope, receive, send)
            return
        chunks = self.stream if isinstance(self.stream, AsyncIterator) else iterate_in_threadpool(self.stream)
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        try:
            while True:
                try:
                    chunk = await chunks.__anext__()
                except StopAsyncIteration:
                    break
                except Exception as exc:
                    # The client already has the status line; all that is left is to cut the stream short, so that
                    # it sees an incomplete body rather than a complete-looking one.
                    logger.error("Encountered Exception while streaming the response of run(): %s", _format(exc))
                    raise StreamAborted() from None
                await send({"type": "http.response.body", "body": _as_bytes(chunk), "more_body": True})
        finally:
            close = getattr(chunks, "aclose", None)
            if close is not None:
                await close()
        await send({"type": "http.response.body", "body": b"", "more_body": False})


def _as_bytes(chunk: Any) -> bytes:
    if isinstance(chunk, str):
        return chunk.encode("utf-8")
    if isinstance(chunk, (bytes, bytearray, memoryview)):
        return bytes(chunk)
    logger.error("A streamed response of run() yielded a %s; chunks must be str or bytes", type(chunk).__name__)
    raise StreamAborted()


def _format(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc)).rstrip()
