"""`AMLResponse.headers`: Werkzeug's `Headers` API over the Starlette header list that is sent.

Scripts written for the reference change a Flask response's headers after building it (`headers.add`, `set`,
`extend`, item assignment with non-str values...). Every method here edits the response's own `raw_headers` list in
place, so what a script changes is what goes out, and the server's own header edits (also in place) are seen by it.
Names are stored lower-case, as Starlette sends them, and shown in Werkzeug's spelling (`Content-Type`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, TypeVar

from starlette.datastructures import MutableHeaders

__all__ = ["ResponseHeaders", "dump_options_header", "header_value"]

T = TypeVar("T")

_TOKEN = frozenset("!#$%&'*+-.0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ^_`abcdefghijklmnopqrstuvwxyz|~")
_NEWLINE = re.compile(r"[\r\n]")
_MISSING: Any = object()


def header_value(value: Any) -> str:
    """A header value as Werkzeug takes it: any object, as its str, without line breaks."""
    text = value if isinstance(value, str) else str(value)
    if _NEWLINE.search(text) is not None:
        raise ValueError("Header values must not contain newline characters.")
    return text


def dump_options_header(header: str | None, options: Mapping[str, Any]) -> str:
    """`value; key=param` as Werkzeug writes it: params quoted unless tokens, None skipped, `key*` left as given."""
    segments = [header] if header is not None else []
    for key, value in options.items():
        if value is None:
            continue
        segments.append(f"{key}={value}" if key.endswith("*") else f"{key}={_quote(value)}")
    return "; ".join(segments)


def _quote(value: Any) -> str:
    text = str(value)
    if not text:
        return '""'
    if _TOKEN.issuperset(text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _key(name: str) -> bytes:
    return name.lower().encode("latin-1")


def _name(key: bytes) -> str:
    return key.decode("latin-1").title()


def _pairs(source: Any) -> Iterator[tuple[str, Any]]:
    """(name, value) pairs of a mapping (a list or tuple value gives one pair per item), a Headers or pairs."""
    if isinstance(source, ResponseHeaders):
        yield from source.items()
    elif isinstance(source, Mapping):
        for name, value in source.items():
            if isinstance(value, (list, tuple, set)):
                yield from ((name, item) for item in value)
            else:
                yield name, value
    else:
        yield from source


class ResponseHeaders(MutableHeaders):
    """Werkzeug's `Headers` over a response's raw header list: case-insensitive, iterated as (Name, value) pairs."""

    def __init__(self, raw: list[tuple[bytes, bytes]]) -> None:
        super().__init__(raw=raw)

    def __getitem__(self, key: str | int) -> Any:
        if isinstance(key, int):
            name, value = self._list[key]
            return _name(name), value.decode("latin-1")
        return super().__getitem__(key)

    def __iter__(self) -> Iterator[tuple[str, str]]:  # type: ignore[override]
        return iter(self.items())

    def items(self, lower: bool = False) -> list[tuple[str, str]]:  # type: ignore[override]
        decode = (lambda key: key.decode("latin-1")) if lower else _name
        return [(decode(key), value.decode("latin-1")) for key, value in self._list]

    def keys(self, lower: bool = False) -> list[str]:  # type: ignore[override]
        return [name for name, _ in self.items(lower)]

    def get(self, key: str, default: Any = None, type: Callable[[str], T] | None = None) -> Any:
        try:
            value = super().__getitem__(key)
        except KeyError:
            return default
        if type is None:
            return value
        try:
            return type(value)
        except ValueError:
            return default

    def getlist(self, key: str, type: Callable[[str], T] | None = None) -> list[Any]:
        values = super().getlist(key)
        if type is None:
            return values
        converted = []
        for value in values:
            try:
                converted.append(type(value))
            except ValueError:
                continue
        return converted

    def get_all(self, name: str) -> list[str]:
        return self.getlist(name)

    def add(self, key: str, value: Any, /, **options: Any) -> None:
        """Append a header; keyword options become `; key=value` parameters (`filename="a.png"`)."""
        self._list.append((_key(key), self._value(value, options).encode("latin-1")))

    add_header = add

    def append(self, key: str, value: Any) -> None:
        self.add(key, value)

    def set(self, key: str, value: Any, /, **options: Any) -> None:
        """Replace every header of this name by one, at the place of the first (or at the end)."""
        name, encoded = _key(key), self._value(value, options).encode("latin-1")
        kept: list[tuple[bytes, bytes]] = []
        placed = False
        for item in self._list:
            if item[0] != name:
                kept.append(item)
            elif not placed:
                kept.append((name, encoded))
                placed = True
        if not placed:
            kept.append((name, encoded))
        self._list[:] = kept

    def __setitem__(self, key: str | int, value: Any) -> None:
        if isinstance(key, int):
            name, item = value
            self._list[key] = (_key(name), header_value(item).encode("latin-1"))
        else:
            self.set(key, value)

    def __delitem__(self, key: str | int) -> None:
        if isinstance(key, int):
            del self._list[key]
        else:
            self.remove(key)

    def remove(self, key: str) -> None:
        name = _key(key)
        self._list[:] = [item for item in self._list if item[0] != name]

    def setlist(self, key: str, values: Iterable[Any]) -> None:
        self.remove(key)
        for value in values:
            self.add(key, value)

    def setdefault(self, key: str, default: Any) -> str:
        if key not in self:
            self.set(key, default)
        return str(super().__getitem__(key))

    def extend(self, other: Any = None, /, **headers: Any) -> None:
        """Add every header of a mapping, Headers or pairs (and keywords), keeping those already there."""
        for name, value in _pairs(other if other is not None else ()):
            self.add(name, value)
        for name, value in headers.items():
            self.add(name, value)

    def update(self, other: Any = None, /, **headers: Any) -> None:
        """Replace the headers named in a mapping or Headers (a list value sets several), pairs, or keywords."""
        if isinstance(other, ResponseHeaders):
            for name in dict.fromkeys(other.keys(lower=True)):
                self.setlist(name, other.getlist(name))
        elif isinstance(other, Mapping):
            self._replace(other)
        elif other is not None:
            for name, value in other:
                self.set(name, value)
        self._replace(headers)

    def _replace(self, headers: Mapping[str, Any]) -> None:
        for name, value in headers.items():
            if isinstance(value, (list, tuple, set)):
                self.setlist(name, value)
            else:
                self.set(name, value)

    def pop(self, key: str | int | None = None, default: Any = _MISSING) -> Any:
        if key is None or isinstance(key, int):
            name, raw = self._list.pop(-1 if key is None else key)
            return _name(name), raw.decode("latin-1")
        if key not in self:
            if default is _MISSING:
                raise KeyError(key)
            return default
        value = super().__getitem__(key)
        self.remove(key)
        return value

    def popitem(self) -> tuple[str, str]:
        return self.pop()  # type: ignore[no-any-return]

    def clear(self) -> None:
        self._list.clear()

    def to_wsgi_list(self) -> list[tuple[str, str]]:
        return self.items()

    def copy(self) -> ResponseHeaders:
        """A detached copy, as Werkzeug's: changing it does not change the response."""
        return ResponseHeaders(list(self._list))

    def __str__(self) -> str:
        return "".join(f"{name}: {value}\r\n" for name, value in self.items()) + "\r\n"

    @staticmethod
    def _value(value: Any, options: Mapping[str, Any]) -> str:
        if options:
            value = dump_options_header(value, {key.replace("_", "-"): item for key, item in options.items()})
        return header_value(value)
