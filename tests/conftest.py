from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests import helpers
from tests.helpers import SAMPLES, SCRIPTS, Server, clean_env


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    # Before any fixture of the test is set up: a module-scoped server is started during its first test's set-up.
    helpers.current_test = item


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item: pytest.Item) -> None:
    helpers.current_test = None


@pytest.fixture(autouse=True)
def _isolated_process_state() -> Iterator[None]:
    """In-process tests load scripts, which export settings to os.environ and extend sys.path: undo both."""
    environ, path = dict(os.environ), list(sys.path)
    yield
    os.environ.clear()
    os.environ.update(environ)
    sys.path[:] = path


ServerFactory = Callable[..., Server]


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[ServerFactory]:
    """Start a server for `script` (a name under tests/scripts or a path); ready unless wait=False."""
    started: list[Server] = []

    def start(
        script: str | Path | None,
        *args: str,
        workers: int = 1,
        env: dict[str, str] | None = None,
        wait: bool = True,
        cwd: Path | None = None,
    ) -> Server:
        argv = list(args)
        if script is not None:
            path = script if isinstance(script, Path) else SCRIPTS / script
            argv = ["--entry_script", str(path), *argv]
        if workers != 1:
            argv += ["--worker_count", str(workers)]
        server = Server(*argv, env=clean_env(**(env or {})), cwd=cwd, log_dir=tmp_path)
        started.append(server)
        return server.wait_ready() if wait else server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(params=[1, 2], ids=["uvicorn", "gunicorn-2"])
def workers(request: pytest.FixtureRequest) -> int:
    return int(request.param)


__all__ = ["SAMPLES", "SCRIPTS"]
