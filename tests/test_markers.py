"""The `slow` marker is on every test that starts a server process, so that `pytest -m "not slow"` starts none."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import SCRIPTS, Server


def test_a_server_is_refused_to_a_test_without_the_slow_marker(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match=r"test_markers.py::test_a_server_is_refused.* mark it @pytest.mark.slow"):
        Server("--entry_script", str(SCRIPTS / "returns.py"), log_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []  # refused before a process or its log was made
