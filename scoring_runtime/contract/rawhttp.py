"""The `@rawhttp` marker: a run() decorated with it gets the request object and may return a response."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

# Counts uses of @rawhttp. The reference switches run() to raw mode when @rawhttp is applied to any function while
# the script is imported; loading compares this count before and after the import to do the same per script.
_uses = 0


def rawhttp(func: F) -> F:
    """Mark `run` as taking the HTTP request object and returning a response."""
    global _uses
    _uses += 1
    func.__scoring_rawhttp__ = True  # type: ignore[attr-defined]
    return func


def uses() -> int:
    """How many times @rawhttp has been applied in this process."""
    return _uses
