"""`Set-Cookie` values written as Werkzeug writes them, for `AMLResponse.set_cookie` and `delete_cookie`.

Starlette's own `set_cookie` differs from Flask's in ways a client sees: it adds `SameSite=lax` by default, takes an
int `expires` as seconds from now rather than a Unix time, and never derives `Expires` from `max_age`.
"""

from __future__ import annotations

import email.utils
import re
import warnings
from datetime import date, datetime, time, timedelta, timezone
from urllib.parse import quote

__all__ = ["MAX_COOKIE_SIZE", "dump_cookie"]

# Werkzeug's (and Flask's, outside an app context) size above which a cookie is sent with a warning.
MAX_COOKIE_SIZE = 4093

_NO_QUOTE = re.compile(r"[\w!#$%&'()*+\-./:<=>?@\[\]^`{|}~]*", re.ASCII)
_SLASHED = re.compile(rb"[\x00-\x19\",;\\\x7f-\xff]", re.ASCII)
_SLASH_MAP = {b'"': b'\\"', b"\\": b"\\\\"}
_SLASH_MAP.update((code.to_bytes(1, "big"), b"\\%03o" % code) for code in [*range(0x20), *b",;", *range(0x7F, 256)])


def http_date(moment: datetime | date | int | float) -> str:
    """An HTTP date; a naive datetime is taken as UTC, a date as its midnight UTC, a number as a Unix time."""
    if isinstance(moment, datetime):
        aware = moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)
        return email.utils.format_datetime(aware, usegmt=True)
    if isinstance(moment, date):
        return email.utils.format_datetime(datetime.combine(moment, time(), tzinfo=timezone.utc), usegmt=True)
    return email.utils.formatdate(moment, usegmt=True)


def dump_cookie(
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
) -> str:
    """The value of a `Set-Cookie` header, as `werkzeug.http.dump_cookie` writes it."""
    if path is not None:
        path = quote(path, safe="%!$&'()*+,/:=@")
    if domain:
        domain = domain.partition(":")[0].lstrip(".").encode("idna").decode("ascii")
    if isinstance(max_age, timedelta):
        max_age = int(max_age.total_seconds())
    if expires is not None:
        if not isinstance(expires, str):
            expires = http_date(expires)
    elif max_age is not None:
        expires = http_date(datetime.now(tz=timezone.utc).timestamp() + max_age)
    if samesite is not None:
        samesite = samesite.title()
        if samesite not in {"Strict", "Lax", "None"}:
            raise ValueError("SameSite must be 'Strict', 'Lax', or 'None'.")
    if partitioned:
        secure = True
    if not _NO_QUOTE.fullmatch(value):
        # Octal escapes of the UTF-8 bytes, as http.cookies writes them.
        value = '"' + _SLASHED.sub(lambda match: _SLASH_MAP[match.group()], value.encode()).decode("ascii") + '"'
    parts = [f"{key.encode().decode('latin-1')}={value}"]
    attributes: list[tuple[str, object]] = [
        ("Domain", domain),
        ("Expires", expires),
        ("Max-Age", max_age),
        ("Secure", secure),
        ("HttpOnly", httponly),
        ("Path", path),
        ("SameSite", samesite),
        ("Partitioned", partitioned),
    ]
    for name, setting in attributes:
        if setting is None or setting is False:
            continue
        parts.append(name if setting is True else f"{name}={setting}")
    cookie = "; ".join(parts)
    if len(cookie) > MAX_COOKIE_SIZE:
        # Sent anyway, as Werkzeug does: browsers may silently drop it, which is hard to see from the server.
        warnings.warn(
            f"The {key!r} cookie is too large: the header is {len(cookie)} bytes, over the limit of"
            f" {MAX_COOKIE_SIZE} bytes. Browsers may silently ignore cookies larger than this.",
            stacklevel=3,
        )
    return cookie
