"""The `@rawhttp` contract: the request object given to a raw `run()`, and `AMLResponse`.

Scripts import these as `azureml.contrib.services.aml_request` / `.aml_response`; `register_azureml_aliases`
makes those names resolve here without any azureml package installed.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Mapping, MutableMapping
from typing import Any
from urllib.parse import parse_qsl

from starlette.datastructures import Headers, QueryParams
from starlette.responses import Response

from scoring_runtime.user_script import rawhttp

__all__ = ["AMLRequest", "AMLResponse", "rawhttp", "register_azureml_aliases"]


class RequestHeaders(Headers):
    """Case-insensitive headers that iterate as (name, value) pairs, as Flask's do."""

    def __iter__(self) -> Iterator[tuple[str, str]]:  # type: ignore[override]
        return iter(self.items())

    def to_dict(self) -> dict[str, str]:
        return dict(self.items())


class AMLRequest:
    """The request a `@rawhttp` run() receives: the Flask request API scripts use, over a body read in advance.

    Nothing here touches the event loop, so it is safe to use from the thread run() is called in.
    """

    def __init__(self, scope: MutableMapping[str, Any], body: bytes) -> None:
        self.method: str = scope["method"]
        self.path: str = scope["path"]
        self.query_string: bytes = scope.get("query_string", b"")
        self.headers = RequestHeaders(scope=scope)
        self.args = QueryParams(self.query_string)
        self.data = body
        client = scope.get("client")
        self.remote_addr: str | None = client[0] if client else None
        scheme = scope.get("scheme", "http")
        host = self.headers.get("host") or (f"{scope['server'][0]}:{scope['server'][1]}" if scope.get("server") else "")
        self.full_path = f"{self.path}?{self.query_string.decode('latin-1')}"
        self.url = f"{scheme}://{host}{self.path}" + (
            f"?{self.query_string.decode('latin-1')}" if self.query_string else ""
        )

    @property
    def content_type(self) -> str | None:
        return self.headers.get("content-type")

    @property
    def mimetype(self) -> str:
        return (self.content_type or "").split(";", 1)[0].strip().lower()

    @property
    def is_json(self) -> bool:
        mimetype = self.mimetype
        return mimetype == "application/json" or (mimetype.startswith("application/") and mimetype.endswith("+json"))

    def get_data(self, as_text: bool = False) -> bytes | str:
        return self.data.decode("utf-8", "replace") if as_text else self.data

    def get_json(self, force: bool = False, silent: bool = False) -> Any:
        if not (force or self.is_json):
            if silent:
                return None
            raise ValueError(f"Did not attempt to load JSON: the Content-Type is {self.content_type!r}, not JSON")
        try:
            return json.loads(self.data)
        except ValueError:
            if silent:
                return None
            raise

    @property
    def json(self) -> Any:
        return self.get_json()

    @property
    def form(self) -> dict[str, str]:
        if self.mimetype != "application/x-www-form-urlencoded":
            return {}
        return dict(parse_qsl(self.data.decode("latin-1"), keep_blank_values=True))


_JSON = "application/json"
_HTML = "text/html; charset=utf-8"


class AMLResponse(Response):
    """A response built by run(), with the reference's constructor and semantics.

    None answers `{}`; `json_str=True` JSON-encodes `message`; other messages are sent as given. Header values are
    split on commas into separate header lines, as the reference does. A status of 500 or more marks the response
    as a run() failure.
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
        if message is None:
            body: bytes | str = b"{}"
            media_type = _JSON
        elif json_str:
            body = json.dumps(message)
            media_type = _JSON
        else:
            body = message
            media_type = _HTML
        # A Content-Type the script chose goes out exactly as given, once.
        super().__init__(body, status_code=status_code, media_type=None if user_type else media_type)
        if user_type:
            self.raw_headers.append((b"content-type", user_type.encode("latin-1")))
        failed = run_function_failed or status_code >= 500
        self.raw_headers.append((b"x-ms-run-function-failed", b"True" if failed else b"False"))
        for name, value in headers.items():
            for piece in str(value).split(","):
                self.raw_headers.append((name.lower().encode("latin-1"), piece.strip().encode("latin-1")))


def register_azureml_aliases() -> None:
    """Make `from azureml.contrib.services.aml_request import rawhttp` (and aml_response) resolve to this module."""
    module = sys.modules[__name__]
    sys.modules["azureml.contrib.services.aml_request"] = module
    sys.modules["azureml.contrib.services.aml_response"] = module
