"""What stops a profile: one line on stderr, a non-zero exit, and no server left behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import SCRIPTS
from tests.profiling.conftest import FAST, Profiler

PREFIX = "scoring-runtime profile: "


def refused(done: object, status: int, *words: str) -> None:
    from tests.profiling.conftest import Done

    assert isinstance(done, Done)
    assert done.status == status, (done.status, done.err)
    errors = [line for line in done.err.splitlines() if line.startswith(PREFIX)]
    assert len(errors) == 1 and errors[0] == done.last_error_line, done.err
    for word in words:
        assert word in errors[0], errors[0]


def test_an_empty_dataset(profile: Profiler, tmp_path: Path) -> None:
    (tmp_path / "empty.txt").write_text("\n  \n")
    done = profile("--entry_script", str(SCRIPTS / "raises.py"), "--input-dataset", str(tmp_path / "empty.txt"),
                   starts_server=False)  # fmt: skip
    refused(done, 3, "has no request bodies")
    assert done.err.count("\n") == 1


def test_a_malformed_line(profile: Profiler, tmp_path: Path) -> None:
    (tmp_path / "bad.txt").write_text('{"data": 1}\n{"data": \n')
    done = profile("--input-dataset", str(tmp_path / "bad.txt"), starts_server=False)
    refused(done, 3, "line 2 is not valid JSON")


def test_a_usage_error(profile: Profiler, dataset: Path) -> None:
    refused(profile("--input-dataset", str(dataset), "--concurrency", "0", starts_server=False), 2, "--concurrency 0")


@pytest.mark.slow
def test_an_init_that_fails(profile: Profiler, dataset: Path) -> None:
    done = profile("--entry_script", str(SCRIPTS / "init_fails.py"), "--input-dataset", str(dataset), *FAST)
    refused(done, 3, "the server exited with status 3 before it was ready: RuntimeError: model file is corrupt")


@pytest.mark.slow
def test_a_server_never_ready(profile: Profiler, dataset: Path, tmp_path: Path) -> None:
    script = tmp_path / "slow_init.py"
    script.write_text("import time\n\n\ndef init():\n    time.sleep(30)\n\n\ndef run(data):\n    return data\n")
    done = profile("--entry_script", str(script), "--input-dataset", str(dataset), "--startup-timeout", "1", *FAST)
    refused(done, 3, "the server was not ready within 1 s (--startup-timeout); its last log line:")


@pytest.mark.slow
def test_every_request_failing(profile: Profiler, dataset: Path) -> None:
    done = profile("--entry_script", str(SCRIPTS / "raises.py"), "--input-dataset", str(dataset), *FAST)
    refused(done, 3, "every request failed (5 warm-up requests); the first answer: 500")


@pytest.mark.slow
def test_every_measured_request_failing(profile: Profiler, dataset: Path) -> None:
    done = profile("--entry_script", str(SCRIPTS / "raises.py"), "--input-dataset", str(dataset), *FAST,
                   "--warmup-requests", "0", "--max-trials", "3", "--concurrency", "1")  # fmt: skip
    refused(done, 3, "every request failed; the first answer: 500")


def test_a_url_nothing_answers(profile: Profiler, dataset: Path) -> None:
    from tests.helpers import free_port

    url = f"http://127.0.0.1:{free_port()}"
    done = profile("--url", url, "--input-dataset", str(dataset), "--startup-timeout", "0.3", starts_server=False)
    refused(done, 3, f"{url}/ready did not answer within 0.3 s")
