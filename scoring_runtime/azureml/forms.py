"""Query strings and form bodies (url-encoded and multipart) as the multi-dicts a Flask-era `run(request)` expects.

Parsing is synchronous over a body already in memory: it happens on the run thread, when the script first reads
`request.form`, `request.files` or `request.values`.
"""

from __future__ import annotations

import io
import shutil
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any, TypeVar
from urllib.parse import parse_qsl

from python_multipart.multipart import MultipartParser, parse_options_header

from scoring_runtime.contract.payload import mimetype_of

V = TypeVar("V")
T = TypeVar("T")


class MultiDict(Mapping[str, V]):
    """Keys with one or more values. `d[key]` and `get` give the first value, as Werkzeug's MultiDict does."""

    def __init__(self, pairs: Iterable[tuple[str, V]] = ()) -> None:
        self._pairs = list(pairs)
        self._lists: dict[str, list[V]] = {}
        for key, value in self._pairs:
            self._lists.setdefault(key, []).append(value)

    def __getitem__(self, key: str) -> V:
        return self._lists[key][0]

    def __iter__(self) -> Iterator[str]:
        return iter(self._lists)

    def __len__(self) -> int:
        return len(self._lists)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._pairs!r})"

    def get(self, key: str, default: Any = None, type: Callable[[V], Any] | None = None) -> Any:
        """The first value of `key`, passed through `type` when given; `default` when absent or `type` fails."""
        values = self._lists.get(key)
        if not values:
            return default
        if type is None:
            return values[0]
        try:
            return type(values[0])
        except (ValueError, TypeError):
            return default

    def getlist(self, key: str, type: Callable[[V], T] | None = None) -> list[Any]:
        values = self._lists.get(key, [])
        if type is None:
            return list(values)
        converted = []
        for value in values:
            try:
                converted.append(type(value))
            except (ValueError, TypeError):
                pass
        return converted

    def multi_items(self) -> list[tuple[str, V]]:
        return list(self._pairs)

    def lists(self) -> list[tuple[str, list[V]]]:
        return [(key, list(values)) for key, values in self._lists.items()]

    def to_dict(self, flat: bool = True) -> dict[str, Any]:
        if flat:
            return {key: values[0] for key, values in self._lists.items()}
        return {key: list(values) for key, values in self._lists.items()}


class FileStorage:
    """An uploaded file of a multipart body, with the Werkzeug FileStorage API (attributes fall through to `stream`).

    `Image.open(request.files["image"])` and `request.files["image"].read()` work as they do under Flask.
    """

    def __init__(self, data: bytes, name: str, filename: str, headers: Mapping[str, str]) -> None:
        self.stream: IO[bytes] = io.BytesIO(data)
        self.name = name
        self.filename = filename
        self.headers = dict(headers)

    @property
    def content_type(self) -> str | None:
        return self.headers.get("content-type")

    @property
    def mimetype(self) -> str:
        return mimetype_of(self.content_type)

    @property
    def content_length(self) -> int:
        return len(self.stream.getbuffer()) if isinstance(self.stream, io.BytesIO) else 0

    def save(self, dst: str | Path | IO[bytes], buffer_size: int = 16384) -> None:
        if isinstance(dst, (str, Path)):
            with open(dst, "wb") as target:
                shutil.copyfileobj(self.stream, target, buffer_size)
        else:
            shutil.copyfileobj(self.stream, dst, buffer_size)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.stream)

    def __bool__(self) -> bool:
        return bool(self.filename)

    def __repr__(self) -> str:
        return f"<FileStorage: {self.filename!r} ({self.content_type!r})>"


def parse_query(query: bytes | str) -> MultiDict[str]:
    text = query.decode("latin-1") if isinstance(query, bytes) else query
    return MultiDict(parse_qsl(text, keep_blank_values=True))


def parse_form(body: bytes, content_type: str | None) -> tuple[MultiDict[str], MultiDict[FileStorage]]:
    """Form fields and uploaded files. Bodies of other types, or malformed ones, have neither (as with Werkzeug)."""
    mimetype, params = parse_options_header(content_type or "")
    if mimetype == b"application/x-www-form-urlencoded":
        return MultiDict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)), MultiDict()
    boundary = params.get(b"boundary")
    if mimetype != b"multipart/form-data" or not boundary:
        return MultiDict(), MultiDict()
    try:
        return _parse_multipart(body, boundary)
    except Exception:
        return MultiDict(), MultiDict()


def _parse_multipart(body: bytes, boundary: bytes) -> tuple[MultiDict[str], MultiDict[FileStorage]]:
    fields: list[tuple[str, str]] = []
    files: list[tuple[str, FileStorage]] = []
    headers: dict[str, str] = {}
    header_name = bytearray()
    header_value = bytearray()
    data = bytearray()

    def on_part_begin() -> None:
        headers.clear()
        data.clear()

    def on_header_field(chunk: bytes, start: int, end: int) -> None:
        header_name.extend(chunk[start:end])

    def on_header_value(chunk: bytes, start: int, end: int) -> None:
        header_value.extend(chunk[start:end])

    def on_header_end() -> None:
        headers[header_name.decode("latin-1").lower()] = header_value.decode("latin-1")
        header_name.clear()
        header_value.clear()

    def on_part_data(chunk: bytes, start: int, end: int) -> None:
        data.extend(chunk[start:end])

    def on_part_end() -> None:
        _, disposition = parse_options_header(headers.get("content-disposition", ""))
        name = disposition.get(b"name", b"").decode("utf-8", "replace")
        filename = disposition.get(b"filename")
        if filename is None:
            fields.append((name, data.decode("utf-8", "replace")))
        else:
            files.append((name, FileStorage(bytes(data), name, filename.decode("utf-8", "replace"), headers)))

    callbacks: Any = {
        "on_part_begin": on_part_begin,
        "on_header_field": on_header_field,
        "on_header_value": on_header_value,
        "on_header_end": on_header_end,
        "on_part_data": on_part_data,
        "on_part_end": on_part_end,
    }
    parser = MultipartParser(boundary, callbacks)
    parser.write(body)
    parser.finalize()
    return MultiDict(fields), MultiDict(files)
