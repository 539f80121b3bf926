"""`scoring-runtime profile` run as users run it: a subprocess of `python -m scoring_runtime profile`."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import ROOT, clean_env, require_slow_marker

# Short windows: the tests check what is measured, not a production-length measurement.
FAST = ("--measurement-interval", "0.5", "--max-trials", "6", "--warmup-requests", "5")


@dataclass(frozen=True)
class Done:
    status: int
    out: str
    err: str
    output: Path

    @property
    def profile(self) -> dict[str, object]:
        loaded: dict[str, object] = json.loads((self.output / "profile.json").read_text())
        return loaded

    @property
    def last_error_line(self) -> str:
        return self.err.rstrip("\n").splitlines()[-1]


Profiler = Callable[..., Done]


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    path = tmp_path / "requests.txt"
    path.write_text("".join(json.dumps({"data": [[index, 2.0]]}) + "\n" for index in range(10)))
    return path


@pytest.fixture
def profile(tmp_path: Path) -> Profiler:
    """The command with ARGS (and --output in tmp_path), to its end; a server it starts makes the test slow."""

    def run(*args: str, starts_server: bool = True, timeout: float = 90.0) -> Done:
        if starts_server:
            require_slow_marker()
        output = tmp_path / "report"
        command = [sys.executable, "-m", "scoring_runtime", "profile", *args, "--output", str(output)]
        done = subprocess.run(command, capture_output=True, text=True, env=clean_env(), cwd=ROOT, timeout=timeout)
        return Done(done.returncode, done.stdout, done.stderr, output)

    return run
