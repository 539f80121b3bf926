"""`scoring-runtime package`: a Docker build context in Azure ML's layout, made from a score.py and its models.

A tool for the machine that builds images: nothing in the server imports it (tests/test_layers.py checks that).
"""

from __future__ import annotations

from scoring_runtime.packaging.command import main

__all__ = ["main"]
