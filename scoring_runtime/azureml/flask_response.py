"""Flask's Response API on a Starlette response, with Werkzeug's semantics: what `AMLResponse` is after construction.

Scripts written for the reference build an `AMLResponse` and then change it as a Flask response (`resp.mimetype =
"image/jpg"`, `resp.headers.add(...)`, `resp.set_cookie(...)`, `resp.status = 201`). Every such change edits what
Starlette sends: `raw_headers`, `status_code` and `body`. None of it costs anything until a script uses it: the
headers object is made on first use and `status` is derived from `status_code`.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta
from http import HTTPStatus
from typing import Any

from starlette.responses import Response

from scoring_runtime.azureml.cookies import dump_cookie
from scoring_runtime.azureml.response_headers import ResponseHeaders

__all__ = ["FlaskResponse"]

# Werkzeug's types that get a `; charset=` when set through `mimetype` (with text/* and *+xml).
_CHARSET_TYPES = frozenset(
    {
        "application/ecmascript",
        "application/javascript",
        "application/sql",
        "application/xml",
        "application/xml-dtd",
        "application/xml-external-parsed-entity",
    }
)


class FlaskResponse(Response):
    """A Starlette response with Flask's Response API: `headers` (Werkzeug's Headers API), `status_code`,
    `status`, `mimetype`, `content_type`, `content_length`, `data`, `get_data()`, `set_data()`, `set_cookie()`,
    `delete_cookie()`, `is_json`, `get_json()`. `charset` (Starlette's, as Werkzeug 2's was) is the encoding of str
    bodies and the charset `mimetype` adds.
    """

    # The chunks of a streamed body: an async iterator, or an iterator the app advances on a run thread.
    stream: Iterator[Any] | AsyncIterator[Any] | None = None
    # (status_code, status line) when a script set `status` to a line with its own reason phrase.
    _status_line: tuple[int, str] | None = None

    def __repr__(self) -> str:
        size = "streamed" if self.stream is not None else f"{len(self.body)} bytes"
        return f"<{type(self).__name__} {size} [{self.status}]>"

    @property
    def headers(self) -> ResponseHeaders:
        view: ResponseHeaders | None = self.__dict__.get("_response_headers")
        # Made again if the list was replaced, so that the view always edits the headers that will be sent.
        if view is None or view.raw is not self.raw_headers:
            view = self._response_headers = ResponseHeaders(self.raw_headers)
        return view

    @headers.setter
    def headers(self, value: Any) -> None:
        """Werkzeug lets a script assign new headers: they replace ours, in the list that is sent."""
        replacement = ResponseHeaders([])
        replacement.extend(value)
        self.raw_headers[:] = replacement.raw
        if self.stream is None and "content-length" not in self.headers:
            # As Werkzeug adds it when sending a body it has whole.
            self.headers.set("Content-Length", str(len(self.body)))

    @property
    def status(self) -> str:
        line = self._status_line
        if line is not None and line[0] == self.status_code:
            return line[1]
        return _status_line(self.status_code)

    @status.setter
    def status(self, value: str | int | HTTPStatus) -> None:
        code, line = _parse_status(value)
        self.status_code = code
        self._status_line = (code, line)

    @property
    def content_type(self) -> str | None:
        value: str | None = self.headers.get("content-type")
        return value

    @content_type.setter
    def content_type(self, value: str | None) -> None:
        self._set_header("Content-Type", value)

    @property
    def mimetype(self) -> str | None:
        content_type = self.content_type
        return content_type.partition(";")[0].strip() if content_type else None

    @mimetype.setter
    def mimetype(self, value: str) -> None:
        if value.startswith("text/") or value in _CHARSET_TYPES or value.endswith("+xml"):
            value = f"{value}; charset={self.charset}"
        self.content_type = value

    @property
    def content_length(self) -> int | None:
        value: int | None = self.headers.get("content-length", type=int)
        return value

    @content_length.setter
    def content_length(self, value: int | str | None) -> None:
        self._set_header("Content-Length", None if value is None else str(value))

    @property
    def is_streamed(self) -> bool:
        return self.stream is not None

    def get_data(self, as_text: bool = False) -> bytes | str:
        """The body. A streamed one is read to its end first and then sent whole, as Werkzeug does."""
        body = self._whole_body()
        return body.decode(self.charset) if as_text else body

    def set_data(self, value: bytes | str) -> None:
        """Replace the body (a str is encoded in `charset`); Content-Length follows it."""
        self.stream = None
        self.body = value.encode(self.charset) if isinstance(value, str) else bytes(value)
        self.headers.set("Content-Length", str(len(self.body)))

    @property
    def data(self) -> bytes:
        return self._whole_body()

    @data.setter
    def data(self, value: bytes | str) -> None:
        self.set_data(value)

    @property
    def is_json(self) -> bool:
        mimetype = self.mimetype
        return mimetype is not None and (
            mimetype == "application/json" or (mimetype.startswith("application/") and mimetype.endswith("+json"))
        )

    def get_json(self, force: bool = False, silent: bool = False) -> Any:
        """The body parsed as JSON; None when the mimetype is not JSON (unless `force`) or, with `silent`, invalid."""
        if not (force or self.is_json):
            return None
        try:
            return json.loads(self._whole_body())
        except ValueError:
            if silent:
                return None
            raise

    @property
    def json(self) -> Any:
        return self.get_json()

    def set_cookie(
        self,
        key: str,
        value: str = "",
        max_age: timedelta | int | None = None,
        expires: str | datetime | int | float | None = None,
        path: str | None = "/",
        domain: str | None = None,
        secure: bool = False,
        httponly: bool = False,
        samesite: str | None = None,
        partitioned: bool = False,
    ) -> None:
        """Flask's set_cookie: Werkzeug's defaults (no SameSite) and format, an int `expires` is a Unix time."""
        cookie = dump_cookie(key, value, max_age, expires, path, domain, secure, httponly, samesite, partitioned)
        self.raw_headers.append((b"set-cookie", cookie.encode("latin-1")))

    def delete_cookie(
        self,
        key: str,
        path: str | None = "/",
        domain: str | None = None,
        secure: bool = False,
        httponly: bool = False,
        samesite: str | None = None,
        partitioned: bool = False,
    ) -> None:
        self.set_cookie(key, "", 0, 0, path, domain, secure, httponly, samesite, partitioned)

    def _set_header(self, name: str, value: str | None) -> None:
        if value is None:
            self.headers.remove(name)
        else:
            self.headers.set(name, value)

    def _whole_body(self) -> bytes:
        stream = self.stream
        if stream is not None:
            if not isinstance(stream, Iterator):
                raise RuntimeError("The body of an AMLResponse over an async iterator cannot be read before it is sent")
            try:
                body = b"".join(_chunk_bytes(chunk) for chunk in stream)
            finally:
                close = getattr(stream, "close", None)
                if close is not None:
                    close()
            self.set_data(body)
        return bytes(self.body)


def _chunk_bytes(chunk: Any) -> bytes:
    if isinstance(chunk, str):
        return chunk.encode("utf-8")
    if isinstance(chunk, (bytes, bytearray, memoryview)):
        return bytes(chunk)
    raise TypeError(f"A streamed AMLResponse yielded a {type(chunk).__name__}; chunks must be str or bytes")


def _parse_status(value: str | int | HTTPStatus) -> tuple[int, str]:
    """Werkzeug's reading of `response.status = value`: a code, a code and reason phrase, or a phrase alone (code 0)."""
    if isinstance(value, int):
        return int(value), _status_line(int(value))
    text = value.strip()
    if not text:
        raise ValueError("Empty status argument")
    code, space, _ = text.partition(" ")
    try:
        number = int(code)
    except ValueError:
        return 0, f"0 {text}"
    return number, text if space else _status_line(number)


def _status_line(code: int) -> str:
    try:
        return f"{code} {HTTPStatus(code).phrase.upper()}"
    except ValueError:
        return f"{code} UNKNOWN"
