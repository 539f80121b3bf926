"""The `@rawhttp` marker: a run() decorated with it gets the request object and may return a response."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

# The reference's own module, where its @rawhttp sets a module-level flag (and marks nothing on the function): a
# script run where that package is installed (Azure ML's images have it) imports its rawhttp, not ours.
REFERENCE_MODULE = "azureml_inference_server_http.api.aml_request"
REFERENCE_FLAG = "_rawHttpRequested"

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
    """How many times @rawhttp has been applied in this process, the reference's own @rawhttp included."""
    _count_reference_uses()
    return _uses


def _count_reference_uses() -> None:
    """Count a use of the reference's @rawhttp, seen from its flag, and clear the flag, so that the next use (by the
    next script loaded in this process) is seen too. Only that flag is read: the package is never imported here."""
    global _uses
    module = sys.modules.get(REFERENCE_MODULE)
    if module is not None and getattr(module, REFERENCE_FLAG, False):
        _uses += 1
        setattr(module, REFERENCE_FLAG, False)
