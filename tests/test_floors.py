"""tests/floors.py: the constraints `make test-floor` installs are the floors pyproject.toml declares."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("tomllib", reason="tests/floors.py runs on Python 3.11 or later, as make does")

from tests.floors import PYPROJECT, TESTED_EXTRAS, floors, tomllib


def test_every_runtime_dependency_has_its_floor_pinned() -> None:
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    extras = [item for extra in TESTED_EXTRAS for item in project["optional-dependencies"][extra]]
    constraints = floors()
    assert len(constraints) == len(project["dependencies"]) + len(extras)
    assert "scikit-learn==1.7.2" in constraints and "onnxruntime==1.23.2" in constraints
    assert "uvicorn==0.54" in constraints and "starlette==1.0" in constraints  # extras and ranges stripped


def test_a_dependency_without_a_floor_is_refused(tmp_path: Path) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[project]\ndependencies = ["numpy>=1.26,<3", "orjson<4"]\n')
    with pytest.raises(ValueError, match="'orjson<4' in .* has no >= floor"):
        floors(pyproject)
