"""Loading score.py: what a plain script costs, and the model folder listing logged on failure."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from scoring_runtime.contract.loading import tree_lines
from tests.azureml.test_models import make
from tests.helpers import SCRIPTS


def test_numpy_and_pandas_are_not_imported_for_a_plain_script() -> None:
    # Our typed-input conversion needs them; a plain script should not pay their memory and start-up time.
    code = (
        "import sys; from scoring_runtime.config import load_settings;"
        "from scoring_runtime.contract.loading import load_script;"
        f"load_script(load_settings({{'entry_script': {str(SCRIPTS / 'raises.py')!r}}})[0]);"
        "print('numpy' in sys.modules, 'pandas' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split()[-2:] == ["False", "False"]


def test_tree_lines_format_and_truncation(tmp_path: Path) -> None:
    make(tmp_path / "root", "b/1", "a")
    assert tree_lines(tmp_path / "root") == [
        f"root{os.sep}",
        f"    a{os.sep}",
        "        model.pkl",
        f"    b{os.sep}",
        f"        1{os.sep}",
        "            model.pkl",
    ]
    lines = tree_lines(tmp_path / "root", limit=3)
    assert lines[-1] == "Output Truncated. First 3 lines shown." and len(lines) == 4
