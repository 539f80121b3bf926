"""The request a `@rawhttp` run() receives: the Flask request API that scripts written for the reference use.

It wraps a body read before run() is called, and parses lazily (headers, query, form, JSON) on first use, so it is
cheap to build and never touches the event loop from the run thread. Scripts import it as
`azureml.contrib.services.aml_request` (see rawhttp.register_azureml_aliases).
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator, MutableMapping
from functools import cached_property
from http.cookies import SimpleCookie
from typing import Any

from scoring_runtime.azureml.forms import FileStorage, MultiDict, parse_form, parse_query
from scoring_runtime.contract.payload import is_json_type, mimetype_of
from scoring_runtime.contract.rawhttp import rawhttp

__all__ = ["AMLRequest", "RequestHeaders", "rawhttp"]


class RequestHeaders(MultiDict[str]):
    """Request headers: looked up case-insensitively, iterated as (Name, value) pairs, as Flask's are.

    Names are in Werkzeug's spelling (`Content-Type`, `X-Ms-Request-Id`); a repeated header is one value, its values
    joined with "," and no space (`one,two`), as gunicorn puts it in the WSGI environ the reference reads.
    """

    def __init__(self, raw: list[tuple[bytes, bytes]]) -> None:
        joined: dict[str, str] = {}
        for key, value in raw:
            name = key.decode("latin-1").title()
            text = value.decode("latin-1")
            joined[name] = f"{joined[name]},{text}" if name in joined else text
        super().__init__(joined.items())
        self._lower = {name.lower(): name for name in joined}

    def _name(self, key: str) -> str:
        return self._lower.get(key.lower(), key)

    def __getitem__(self, key: str) -> str:
        return super().__getitem__(self._name(key))

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower() in self._lower

    def __iter__(self) -> Iterator[tuple[str, str]]:  # type: ignore[override]
        return iter(self.multi_items())

    def keys(self) -> list[str]:  # type: ignore[override]
        return list(self._lists)

    def items(self) -> list[tuple[str, str]]:  # type: ignore[override]
        return self.multi_items()

    def values(self) -> list[str]:  # type: ignore[override]
        return [value for _, value in self.multi_items()]

    def get(self, key: str, default: Any = None, type: Any = None) -> Any:
        return super().get(self._name(key), default, type)

    def getlist(self, key: str, type: Any = None) -> list[Any]:
        return super().getlist(self._name(key), type)

    def to_wsgi_list(self) -> list[tuple[str, str]]:
        return self.multi_items()


class AMLRequest:
    """What a `@rawhttp` run(request) gets. Attribute names and behaviour follow flask.Request."""

    def __init__(self, scope: MutableMapping[str, Any], body: bytes) -> None:
        self._scope = scope
        self.method: str = scope["method"]
        self.path: str = scope["path"]
        self.query_string: bytes = scope.get("query_string", b"")
        self.data = body

    def __repr__(self) -> str:
        return f"<AMLRequest {self.url!r} [{self.method}]>"

    @cached_property
    def headers(self) -> RequestHeaders:
        return RequestHeaders(self._scope["headers"])

    @cached_property
    def args(self) -> MultiDict[str]:
        return parse_query(self.query_string)

    @cached_property
    def _form_and_files(self) -> tuple[MultiDict[str], MultiDict[FileStorage]]:
        return parse_form(self.data, self.content_type)

    @property
    def form(self) -> MultiDict[str]:
        return self._form_and_files[0]

    @property
    def files(self) -> MultiDict[FileStorage]:
        return self._form_and_files[1]

    @property
    def values(self) -> MultiDict[str]:
        """Query arguments and form fields together, arguments first."""
        return MultiDict([*self.args.multi_items(), *self.form.multi_items()])

    @cached_property
    def cookies(self) -> dict[str, str]:
        jar: SimpleCookie = SimpleCookie()
        for name, value in self._scope["headers"]:
            if name == b"cookie":
                try:
                    jar.load(value.decode("latin-1"))
                except Exception:  # a malformed Cookie header means no cookies, not an error in run()
                    continue
        return {key: morsel.value for key, morsel in jar.items()}

    @cached_property
    def stream(self) -> io.BytesIO:
        return io.BytesIO(self.data)

    @property
    def scheme(self) -> str:
        return str(self._scope.get("scheme", "http"))

    @property
    def host(self) -> str:
        host = self.headers.get("host")
        if host:
            return str(host)
        server = self._scope.get("server")
        return f"{server[0]}:{server[1]}" if server else ""

    @property
    def host_url(self) -> str:
        return f"{self.scheme}://{self.host}/"

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://{self.host}{self.path}"

    @property
    def url(self) -> str:
        query = self.query_string.decode("latin-1")
        return f"{self.base_url}?{query}" if query else self.base_url

    @property
    def full_path(self) -> str:
        return f"{self.path}?{self.query_string.decode('latin-1')}"

    @property
    def remote_addr(self) -> str | None:
        client = self._scope.get("client")
        return str(client[0]) if client else None

    @property
    def content_type(self) -> str | None:
        value = self.headers.get("content-type")
        return None if value is None else str(value)

    @property
    def content_length(self) -> int | None:
        value = self.headers.get("content-length")
        return int(value) if value is not None and str(value).isdigit() else None

    @property
    def mimetype(self) -> str:
        return mimetype_of(self.content_type)

    @property
    def mimetype_params(self) -> dict[str, str]:
        params = {}
        for part in (self.content_type or "").split(";")[1:]:
            key, _, value = part.partition("=")
            if key.strip():
                params[key.strip().lower()] = value.strip().strip('"')
        return params

    @property
    def is_json(self) -> bool:
        return is_json_type(self.content_type)

    def get_data(self, cache: bool = True, as_text: bool = False, parse_form_data: bool = False) -> bytes | str:
        """The raw body (text when `as_text`), whatever its Content-Type. Flask's positional order is kept."""
        return self.data.decode("utf-8", "replace") if as_text else self.data

    def get_json(self, force: bool = False, silent: bool = False, cache: bool = True) -> Any:
        """The body parsed as JSON. Raises ValueError (a 500 from run(), as under the reference) unless `silent`."""
        if not (force or self.is_json):
            if silent:
                return None
            raise ValueError(f"Did not attempt to load JSON data because the Content-Type is {self.content_type!r}")
        try:
            return json.loads(self.data)
        except ValueError:
            if silent:
                return None
            raise

    @property
    def json(self) -> Any:
        return self.get_json()
