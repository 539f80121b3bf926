"""`scoring-runtime profile`: a score.py served and loaded with a dataset of request bodies, level by level, until
each level's measurement is stable; its CPU, memory and latency, and the resources to request for it.

A tool for the machine that sizes a deployment: nothing in the server imports it (tests/test_layers.py checks that).
"""

from __future__ import annotations

from scoring_runtime.profiling.command import main

__all__ = ["main"]
