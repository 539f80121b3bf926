"""Parsers of setting values: each takes what a flag, the environment or the config file gave and returns the value,
or raises ValueError with a message that config.py prefixes with the setting's name. And `setting`, which declares
one setting of settings.py with its parser."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

TRUE = {"true", "1", "yes", "on"}
FALSE = {"false", "0", "no", "off"}
# What pydantic reads as a boolean (case-insensitive, not stripped): the reference's server settings use it.
PYDANTIC_TRUE = frozenset({"1", "on", "t", "true", "y", "yes"})
PYDANTIC_FALSE = frozenset({"0", "off", "f", "false", "n", "no"})
LOG_LEVELS = {"DEBUG", "INFO", "WARNING", "WARN", "ERROR", "CRITICAL"}


@dataclass(frozen=True)
class ReadAs:
    """A value a setting does not expect, taken as `value` anyway because the reference takes it so: config.py uses
    `value` and logs `note`, prefixed with the setting's name."""

    value: Any
    note: str


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


def reference_boolean(true: frozenset[str], case_sensitive: bool, rule: str) -> Callable[[object], bool | ReadAs]:
    """A boolean the reference reads: `true` spellings turn it on, anything else turns it off, as there.

    A container that started under the reference must start here too, so a value that is not a boolean is read as
    false with a note, not refused. So is a true-looking value the reference reads as false (`1` where only `true`
    counts): it is false there too, and the note says why. A recognised false spelling needs no note.
    """

    def parse(raw: object) -> bool | ReadAs:
        if isinstance(raw, bool):
            return raw
        value = str(raw)
        if (value if case_sensitive else value.lower()) in true:
            return True
        if value.lower() in PYDANTIC_FALSE:
            return False
        return ReadAs(False, f"{value!r} is read as false: {rule}")

    return parse


# How each of the reference's boolean variables is read: its launcher compares with "true", exactly or in any case;
# its server settings use pydantic's bool, which refuses anything else (here: false, with a note).
exact_true = reference_boolean(frozenset({"true"}), True, "azmlinfsrv turns it on only for exactly 'true'")
any_case_true = reference_boolean(frozenset({"true"}), False, "azmlinfsrv turns it on only for 'true', in any case")
pydantic_boolean = reference_boolean(PYDANTIC_TRUE, False, "it is not a boolean; azmlinfsrv would not start")


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


class Listed(tuple[str, ...]):
    """Items of a comma-separated setting that also keep the text they were read from: the reference exports such a
    setting to the script's environment exactly as given (`a, b` stays `a, b`)."""

    text: str

    def __new__(cls, items: tuple[str, ...], text: str) -> Listed:
        listed = super().__new__(cls, items)
        listed.text = text
        return listed

    def __getnewargs__(self) -> tuple[tuple[str, ...], str]:
        return tuple(self), self.text


def listed(raw: object) -> Listed:
    items = comma_list(raw)
    return Listed(items, ", ".join(items) if isinstance(raw, list) else str(raw))


def auth_keys(raw: object) -> tuple[str, ...]:
    keys = comma_list(raw)
    if len(keys) > 2:
        raise ValueError(f"expected at most 2 keys (primary,secondary), got {len(keys)}")
    return keys


def setting(
    env: str,
    parse: Callable[[object], Any],
    default: Any,
    doc: str,
    cli: str | None = None,
    secret: bool = False,
    const: str | None = None,
    ignored: str | None = None,
) -> Any:
    """`const`: the flag takes no value and sets this one. `ignored`: why a value other than the default is accepted
    (a migrated container keeps starting) but not acted on; config.py logs it once."""
    metadata = {"env": env, "parse": parse, "doc": doc, "cli": cli, "const": const, "ignored": ignored}
    # Secrets stay out of repr(), so that no log line or traceback that shows the settings shows them.
    if callable(default):
        return field(default_factory=default, metadata=metadata, repr=not secret)
    return field(default=default, metadata=metadata, repr=not secret)


# Framework names a model folder may be declared as: Azure ML's (`ScikitLearn`, `Onnx`, `TensorFlow`) and ours, in
# any case, each to the name models/base.py uses.
MODEL_FRAMEWORKS = {
    "scikitlearn": "sklearn",
    "sklearn": "sklearn",
    "onnx": "onnx",
    "tensorflow": "tensorflow",
    "xgboost": "xgboost",
    "lightgbm": "lightgbm",
}


def model_framework(raw: object) -> str | None:
    value = text(raw)
    if not value:
        return None
    try:
        return MODEL_FRAMEWORKS[value.lower().replace("-", "").replace("_", "")]
    except KeyError:
        raise ValueError(f"expected one of ScikitLearn, Onnx, TensorFlow, XGBoost, LightGBM, got {raw!r}") from None


def sha256_hex(raw: object) -> str | None:
    value = text(raw).lower()
    if not value:
        return None
    if len(value) != 64 or any(char not in "0123456789abcdef" for char in value):
        raise ValueError(f"expected a SHA-256 digest as 64 hexadecimal characters, got {raw!r}")
    return value


def optional_megabytes(raw: object) -> int | None:
    """A memory budget in MiB; empty or 0 means none."""
    value = text(raw)
    return integer(0)(value) or None if value else None


def threads(raw: object) -> int | None:
    """A thread count, `auto` (None: the caller's share of the CPUs), or 0 (the libraries' own defaults)."""
    value = text(raw)
    if value.lower() in ("", "auto"):
        return None
    try:
        return integer(0, 1024)(value)
    except ValueError as error:
        raise ValueError(f"{error}; or auto") from None
