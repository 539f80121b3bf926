"""Processes, sockets and HTTP/1.1: uvicorn in this process for one worker, gunicorn with uvicorn workers for more.

This layer talks to the application only through what `scoring_runtime.app` exports. Importing it imports only the
supervising parent's modules (supervise.py), which is forked before the server stack is imported: `run` imports that.
"""

from __future__ import annotations

from collections.abc import Sequence

from scoring_runtime.config import Settings
from scoring_runtime.serving.supervise import serve_single_worker

__all__ = ["run", "serve_single_worker"]


def run(settings: Settings, warnings: list[str] | None = None, notes: Sequence[str] = ()) -> int:
    """Serve until stopped; the process's exit status (launch.py). `notes` are logged at start-up."""
    from scoring_runtime.serving.launch import run as launch

    return launch(settings, warnings, notes)
