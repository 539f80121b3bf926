"""The floor of every runtime dependency, as pip constraints (`name==floor`), read from pyproject.toml.

`make test-floor` installs the package with these constraints, so the floors the suite runs at are the ones declared.
Usage: python tests/floors.py > floors.txt
"""

from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path

# The standard library's TOML reader, from Python 3.11 on (make runs this with .venv's Python).
tomllib = importlib.import_module("tomllib")

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
_FLOOR = re.compile(r">=\s*([0-9][^,;\s]*)")


# The extras whose libraries the suite tests: the model frameworks but TensorFlow (tested in a venv of its own), and
# the profiler's.
TESTED_EXTRAS = ("sklearn", "onnx", "xgboost", "lightgbm", "profile")


def floors(pyproject: Path = PYPROJECT) -> list[str]:
    """`name==version` for each runtime dependency and each of the tested extras' libraries; a dependency without
    a `>=` floor is an error."""
    project = tomllib.loads(pyproject.read_text())["project"]
    extras = project.get("optional-dependencies", {})
    requirements = [*project["dependencies"], *(item for extra in TESTED_EXTRAS for item in extras.get(extra, ()))]
    constraints = []
    for requirement in requirements:
        name, floor = _NAME.match(requirement), _FLOOR.search(requirement)
        if name is None or floor is None:
            raise ValueError(f"{requirement!r} in {pyproject} has no >= floor")
        constraints.append(f"{name.group(1)}=={floor.group(1)}")
    return constraints


if __name__ == "__main__":
    sys.stdout.write("".join(f"{line}\n" for line in floors()))
