from __future__ import annotations

from scoring_runtime.config import FIELDS
from tests.helpers import ROOT


def test_configuration_doc_lists_every_setting_and_flag() -> None:
    text = (ROOT / "docs" / "configuration.md").read_text()
    for spec in FIELDS.values():
        assert f"| `{spec.metadata['env']}` |" in text
        if spec.metadata["cli"]:
            assert f"`--{spec.metadata['cli']}`" in text


def test_readme_starts_with_the_two_commands() -> None:
    lines = (ROOT / "README.md").read_text().splitlines()
    commands = [line.split("#")[0].strip() for line in lines[2:6] if line.startswith("make")]
    assert commands == ["make run", "make test"]
