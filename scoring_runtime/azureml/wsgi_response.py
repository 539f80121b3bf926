"""A Werkzeug response returned by run(): the reference's own `AMLResponse` (installed, as in Azure ML's images) or a
`flask.Response`, turned into ours. Duck-typed: neither Flask nor Werkzeug is imported here.

The reference sends such a response as it is, through Werkzeug's WSGI protocol; we ask it for the same thing
(`get_wsgi_response`: the status line, the header list with Werkzeug's own adjustments, and the body iterable) and send
that. A body Werkzeug holds whole is sent whole with its Content-Length; a streamed one (a generator) is streamed,
each chunk produced on a run thread as for our own AMLResponse.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from scoring_runtime.azureml.aml_response import AMLResponse
from scoring_runtime.azureml.flask_response import FlaskResponse

__all__ = ["WerkzeugResponse", "adopt_response", "is_werkzeug_response"]

# What Werkzeug reads of the request when it builds the response: the method (a HEAD or POST body is the same here;
# the HTTP server drops a HEAD's) and, only for a response whose `autocorrect_location_header` a script turned on,
# the URL a relative Location is joined to.
_ENVIRON = {
    "REQUEST_METHOD": "POST",
    "SCRIPT_NAME": "",
    "PATH_INFO": "/score",
    "QUERY_STRING": "",
    "SERVER_NAME": "localhost",
    "SERVER_PORT": "80",
    "SERVER_PROTOCOL": "HTTP/1.1",
    "wsgi.url_scheme": "http",
}


def is_werkzeug_response(result: Any) -> bool:
    """Whether `result` is a Werkzeug response (Flask's, or a subclass such as the reference's AMLResponse). Looked up
    on the type, so that an object answering every attribute (a mock, a `__getattr__` proxy) is not taken for one."""
    return callable(getattr(type(result), "get_wsgi_response", None))


def adopt_response(result: Any) -> Any:
    """`result` as our response when it is a Werkzeug one; anything else unchanged."""
    return WerkzeugResponse(result) if is_werkzeug_response(result) else result


class WerkzeugResponse(AMLResponse):
    """What a Werkzeug response sends, as ours: its status line, every header in order (a repeated Set-Cookie
    included), and its body, whole or streamed. After construction it is our AMLResponse, Flask's API included."""

    def __init__(self, response: Any) -> None:
        body_iter, status, headers = response.get_wsgi_response(dict(_ENVIRON))
        streamed = bool(getattr(response, "is_streamed", False))
        body = b"" if streamed else _read_whole(body_iter)
        FlaskResponse.__init__(self, body)
        self.raw_headers = [
            (str(name).lower().encode("latin-1"), str(value).encode("latin-1")) for name, value in headers
        ]
        self.status = str(status)
        if streamed:
            self.stream = body_iter if isinstance(body_iter, Iterator) else iter(body_iter)


def _read_whole(body_iter: Iterable[Any]) -> bytes:
    """The body of a response Werkzeug holds whole; the iterable closed after, as a WSGI server closes it (which runs
    the response's `call_on_close` functions)."""
    try:
        return b"".join(chunk.encode("utf-8") if isinstance(chunk, str) else bytes(chunk) for chunk in body_iter)
    finally:
        close = getattr(body_iter, "close", None)
        if close is not None:
            close()
