"""Processes, sockets and HTTP/1.1: uvicorn in this process for one worker, gunicorn with uvicorn workers for more.

This layer talks to the application only through what `scoring_runtime.app` exports.
"""

from scoring_runtime.serving.launch import run

__all__ = ["run"]
