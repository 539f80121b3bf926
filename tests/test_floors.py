"""tests/floors.py: the constraints `make test-floor` installs are the floors pyproject.toml declares."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("tomllib", reason="tests/floors.py runs on Python 3.11 or later, as make does")

from tests.floors import PYPROJECT, floors, tomllib


def test_every_runtime_dependency_has_its_floor_pinned() -> None:
    declared = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    constraints = floors()
    assert len(constraints) == len(declared)
    assert "uvicorn==0.54" in constraints and "starlette==1.0" in constraints  # extras and ranges stripped


def test_a_dependency_without_a_floor_is_refused(tmp_path: Path) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[project]\ndependencies = ["numpy>=1.26,<3", "orjson<4"]\n')
    with pytest.raises(ValueError, match="'orjson<4' in .* has no >= floor"):
        floors(pyproject)
