"""Bad input: one line on stderr, a non-zero exit, and nothing written (or the previous context left as it was)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.packaging.conftest import Outcome, Packager, tree

SCRIPT = ("--entry_script", "app/score.py")


def refused(done: Outcome, status: int, *words: str) -> None:
    assert done.status == status, done
    assert done.err.count("\n") == 1 and done.err.startswith("scoring-runtime package: "), done.err
    for word in words:
        assert word in done.err


def nothing_written(project: Path) -> None:
    assert sorted(path.name for path in project.iterdir()) == ["app", "models"]


@pytest.mark.parametrize(
    ("args", "status", "words"),
    [
        (("--entry_script", "app/missing.py"), 3, ("--entry_script app/missing.py is not a file",)),
        (("--source_dir", "models", *SCRIPT), 3, ("is outside --source_dir", "move the script into it")),
        (("--source_dir", "nowhere", *SCRIPT), 3, ("--source_dir nowhere is not a folder",)),
        ((*SCRIPT, "--model_dir", "models/missing"), 3, ("--model_dir models/missing does not exist",)),
        ((*SCRIPT, "--model", "iris:1=models/missing"), 3, ("models/missing does not exist",)),
        ((*SCRIPT, "--model", "iris=models/iris"), 2, ("write it NAME:VERSION=PATH",)),
        ((*SCRIPT, "--model", "iris:1"), 2, ("write it NAME:VERSION=PATH",)),
        ((*SCRIPT, "--model", ":1=models/iris"), 2, ("write it NAME:VERSION=PATH",)),
        ((*SCRIPT, "--model", "ir is:1=models/iris"), 2, ("'ir is' is not a valid name",)),
        ((*SCRIPT, "--model", "iris:1=models/iris", "--model", "iris:1=models/iris"), 2, ("given twice",)),
        ((*SCRIPT, "--model_dir", "models/iris", "--model", "a:1=models/iris"), 2, ("not allowed with",)),
        ((*SCRIPT, "--requirements", "r.txt", "--conda", "e.yml"), 2, ("--conda: not allowed with",)),
        ((*SCRIPT, "--requirements", "r.txt"), 3, ("--requirements r.txt is not a file",)),
        ((*SCRIPT, "--python_version", "3"), 2, ("such as 3.11",)),
        (("--output", "ctx"), 2, ("give --entry_script, or the models",)),
        (SCRIPT, 2, ("the following arguments are required: --output", "--help")),
        ((*SCRIPT, "--no-such-flag"), 2, ("unrecognized arguments: --no-such-flag",)),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(
    project: Path, package: Packager, args: tuple[str, ...], status: int, words: tuple[str, ...]
) -> None:
    output = () if "--output" in args or args == SCRIPT else ("--output", "ctx")
    refused(package(*args, *output), status, *words)
    nothing_written(project)


def test_an_unresolvable_requirement(project: Path, package: Packager, wheels: Path) -> None:
    (project / "requirements.txt").write_text("no-such-package==9.9\n")
    done = package(*SCRIPT, "--requirements", "requirements.txt", "--output", "build/ctx")
    refused(done, 3, "pip cannot download the requirements (No matching distribution found for no-such-package")
    assert sorted(path.name for path in project.iterdir()) == ["app", "models", "requirements.txt", "wheels"]


def test_a_requirements_file_that_includes_another(project: Path, package: Packager) -> None:
    (project / "requirements.txt").write_text("tiny\n-r more.txt\n")
    refused(package(*SCRIPT, "--requirements", "requirements.txt", "--output", "ctx"), 3, "'-r more.txt' names")


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("dependencies: [numpy\n", ("is not valid YAML at line",)),
        ("name: empty\n", ("has no dependencies",)),
        ("name: empty\ndependencies: []\n", ("has no dependencies",)),
        ("- just\n- a list\n", ("has no dependencies",)),
        ("dependencies:\n  - {conda: [x]}\n", ("neither a conda package nor a pip: list",)),
    ],
)
def test_a_bad_conda_file(project: Path, package: Packager, text: str, words: tuple[str, ...]) -> None:
    (project / "environment.yml").write_text(text)
    refused(package(*SCRIPT, "--conda", "environment.yml", "--output", "ctx"), 3, *words)
    assert not (project / "ctx").exists()


def test_an_existing_output_is_kept_without_force(project: Path, package: Packager) -> None:
    (project / "ctx").mkdir()
    (project / "ctx" / "mine.txt").write_text("keep me\n")
    refused(package(*SCRIPT, "--output", "ctx"), 3, "exists and is not empty", "--force")
    assert tree(project / "ctx") == ["mine.txt"]


def test_force_replaces_the_output_once_the_new_one_is_complete(project: Path, package: Packager, wheels: Path) -> None:
    assert package(*SCRIPT, "--output", "ctx").status == 0
    before = tree(project / "ctx")
    (project / "requirements.txt").write_text("no-such-package\n")
    done = package(*SCRIPT, "--requirements", "requirements.txt", "--output", "ctx", "--force")
    refused(done, 3, "No matching distribution")
    assert tree(project / "ctx") == before
    assert not list(project.glob(".ctx.*"))
    (project / "requirements.txt").write_text("tiny\n")
    assert package(*SCRIPT, "--requirements", "requirements.txt", "--output", "ctx", "--force").status == 0
    assert "wheelhouse/tiny-1.0-py3-none-any.whl" in tree(project / "ctx")
    assert not list(project.glob(".ctx.*"))


def test_an_output_that_is_a_file(project: Path, package: Packager) -> None:
    (project / "ctx").write_text("")
    refused(package(*SCRIPT, "--output", "ctx", "--force"), 3, "--output ctx is a file")


@pytest.mark.parametrize("output", [".", "..", "app", "models"])
def test_force_never_replaces_the_inputs(project: Path, package: Packager, output: str) -> None:
    refused(package(*SCRIPT, "--model_dir", "models/iris", "--output", output, "--force"), 3, "holds")
    nothing_written(project)
    assert (project / "app" / "score.py").is_file()


def test_a_file_that_cannot_be_copied(project: Path, package: Packager) -> None:
    (project / "app" / "data.csv").symlink_to(project / "gone.csv")
    refused(package(*SCRIPT, "--output", "build/ctx"), 3, "cannot copy", "data.csv")
    nothing_written(project)
