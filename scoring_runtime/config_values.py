"""Parsers of setting values: each takes what a flag, the environment or the config file gave and returns the value,
or raises ValueError with a message that config.py prefixes with the setting's name."""

from __future__ import annotations

import json
from collections.abc import Callable

TRUE = {"true", "1", "yes", "on"}
FALSE = {"false", "0", "no", "off"}
LOG_LEVELS = {"DEBUG", "INFO", "WARNING", "WARN", "ERROR", "CRITICAL"}


def text(raw: object) -> str:
    if isinstance(raw, (dict, list)):
        raise ValueError(f"expected a string, got {json.dumps(raw)}")
    return str(raw).strip()


def optional_text(raw: object) -> str | None:
    return text(raw) or None


def integer(minimum: int, maximum: int | None = None) -> Callable[[object], int]:
    def parse(raw: object) -> int:
        if isinstance(raw, bool) or not isinstance(raw, (int, str)):
            raise ValueError(f"expected an integer, got {raw!r}")
        try:
            value = int(raw)
        except ValueError:
            raise ValueError(f"expected an integer, got {raw!r}") from None
        if value < minimum:
            raise ValueError(f"must be at least {minimum}, got {value}")
        if maximum is not None and value > maximum:
            raise ValueError(f"must be at most {maximum}, got {value}")
        return value

    return parse


def port(raw: object) -> int:
    return integer(1, 65535)(raw)


def optional_port(raw: object) -> int | None:
    return None if raw in (None, "") else port(raw)


def boolean(raw: object) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in TRUE:
        return True
    if text in FALSE:
        return False
    raise ValueError(f"expected true or false, got {raw!r}")


def log_level(raw: object) -> str:
    level = text(raw).upper()
    if level not in LOG_LEVELS:
        raise ValueError(f"expected one of DEBUG, INFO, WARNING, ERROR, CRITICAL, got {raw!r}")
    return "WARNING" if level == "WARN" else level


def log_format(raw: object) -> str:
    value = text(raw).lower()
    if value not in ("text", "json"):
        raise ValueError(f"expected text or json, got {raw!r}")
    return value


def path_prefix(raw: object) -> str:
    """`test`, `/test` and `/test/` all mean `/test`; empty or `/` means no prefix."""
    segments = text(raw).strip("/")
    if any(char.isspace() or char in "?#%" for char in segments) or "//" in segments:
        raise ValueError(f"expected a URL path such as /models/diabetes, got {raw!r}")
    return f"/{segments}" if segments else ""


def comma_list(raw: object) -> tuple[str, ...]:
    items = raw if isinstance(raw, list) else text(raw).split(",")
    return tuple(origin for origin in (str(item).strip() for item in items) if origin)


def auth_keys(raw: object) -> tuple[str, ...]:
    keys = comma_list(raw)
    if len(keys) > 2:
        raise ValueError(f"expected at most 2 keys (primary,secondary), got {len(keys)}")
    return keys
