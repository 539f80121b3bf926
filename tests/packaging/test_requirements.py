"""Requirements downloaded as wheels when the package is made, from requirements.txt or a conda environment.yml; pip
finds them in a local folder (the `wheels` fixture), never on the network."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from scoring_runtime.packaging.errors import PackageError
from scoring_runtime.packaging.requirements import from_conda_file, last_error
from tests.packaging.conftest import Packager, make_wheel, tree
from tests.packaging.test_layout import lint

ENVIRONMENT = """\
name: iris
channels: [conda-forge]
dependencies:
  - python=3.11
  - pip>=23
  - numpy=1.26
  - conda-forge::scikit-learn>=1.5
  - pip:
    - tiny==1.0
"""


def test_the_wheels_are_downloaded_into_the_wheelhouse(project: Path, package: Packager, wheels: Path) -> None:
    (project / "requirements.txt").write_text("# what score.py imports\ntiny==1.0\n")
    done = package("--entry_script", "app/score.py", "--requirements", "requirements.txt", "--output", "ctx")
    assert done.status == 0, done.err
    assert done.err == ""
    assert tree(project / "ctx" / "wheelhouse") == ["tiny-1.0-py3-none-any.whl"]
    assert (project / "ctx" / "requirements.txt").read_text() == "tiny==1.0\n"
    dockerfile = (project / "ctx" / "Dockerfile").read_text()
    assert "--mount=type=bind,source=wheelhouse,target=/tmp/wheelhouse" in dockerfile
    assert "--no-index --find-links /tmp/wheelhouse --requirement /tmp/requirements.txt" in dockerfile
    assert "/opt/scoring-runtime/bin/pip install" in dockerfile
    # Root for the install only: the server runs as the base image's user.
    users = [line for line in dockerfile.splitlines() if line.startswith("USER")]
    assert users == ["USER 0", "USER 1000:1000"]
    assert dockerfile.index("USER 1000:1000") < dockerfile.index("COPY azureml-app")
    ignored = (project / "ctx" / ".dockerignore").read_text().splitlines()
    assert {"!wheelhouse", "!requirements.txt"} <= set(ignored)
    assert "x86-64" in (project / "ctx" / "README.md").read_text()
    linted = lint(project / "ctx" / "Dockerfile", "warning")
    assert linted.returncode == 0, linted.stdout + linted.stderr


def test_dependencies_are_downloaded_too(project: Path, package: Packager, wheels: Path) -> None:
    make_wheel(wheels, "needs-tiny", "2.0", requires=["tiny>=1"])
    (project / "requirements.txt").write_text("needs-tiny\n")
    done = package("--model_dir", "models/iris", "--requirements", "requirements.txt", "--output", "ctx")
    assert done.status == 0, done.err
    assert tree(project / "ctx" / "wheelhouse") == ["needs_tiny-2.0-py3-none-any.whl", "tiny-1.0-py3-none-any.whl"]


def test_pip_is_asked_for_the_images_platform(project: Path, package: Packager, wheels: Path) -> None:
    make_wheel(wheels, "native", "1.0", tag="cp311-cp311-win_amd64")
    (project / "requirements.txt").write_text("native\n")
    done = package("--model_dir", "models/iris", "--requirements", "requirements.txt", "--output", "ctx")
    assert done.status == 3
    assert "No matching distribution found for native" in done.err
    assert not (project / "ctx").exists()
    make_wheel(wheels, "native", "1.0", tag="cp311-cp311-manylinux_2_28_x86_64")
    done = package("--model_dir", "models/iris", "--requirements", "requirements.txt", "--output", "ctx")
    assert done.status == 0, done.err
    assert tree(project / "ctx" / "wheelhouse") == ["native-1.0-cp311-cp311-manylinux_2_28_x86_64.whl"]


def test_no_requirements_no_install(project: Path, package: Packager, wheels: Path) -> None:
    (project / "requirements.txt").write_text("# nothing yet\n\n")
    done = package("--entry_script", "app/score.py", "--requirements", "requirements.txt", "--output", "ctx")
    assert done.status == 0, done.err
    assert "wheelhouse" not in tree(project / "ctx")
    assert not (project / "ctx" / "requirements.txt").exists()
    dockerfile = (project / "ctx" / "Dockerfile").read_text()
    assert "RUN" not in dockerfile and "USER" not in dockerfile


def test_a_conda_environment_installs_its_pip_section(project: Path, package: Packager, wheels: Path) -> None:
    (project / "environment.yml").write_text(ENVIRONMENT)
    done = package("--entry_script", "app/score.py", "--conda", "environment.yml", "--output", "ctx")
    assert done.status == 0, done.err
    assert (project / "ctx" / "requirements.txt").read_text() == "tiny==1.0\n"
    assert tree(project / "ctx" / "wheelhouse") == ["tiny-1.0-py3-none-any.whl"]
    # One warning that names the conda-only packages (not python or pip) and says what to do.
    assert done.err.count("\n") == 1
    assert done.err.startswith("scoring-runtime package: warning: ")
    assert "numpy=1.26, conda-forge::scikit-learn>=1.5; add pip equivalents" in done.err
    assert "python" not in done.err.partition("install: ")[2].partition(";")[0]


def test_a_conda_environment_without_conda_only_packages_warns_of_nothing(project: Path) -> None:
    (project / "environment.yml").write_text("dependencies:\n  - python\n  - pip\n  - pip: [tiny]\n")
    assert from_conda_file("environment.yml").lines == ("tiny",)
    assert from_conda_file("environment.yml").conda_only == ()


def test_reading_a_conda_file_without_pyyaml_says_what_to_install(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (project / "environment.yml").write_text(ENVIRONMENT)
    monkeypatch.setitem(sys.modules, "yaml", None)  # `import yaml` now raises ImportError
    with pytest.raises(PackageError, match=r"needs PyYAML: pip install pyyaml$"):
        from_conda_file("environment.yml")


def test_pips_last_error_line_is_kept_short() -> None:
    output = "Looking in links: /w\nERROR: Could not find a version\nERROR: No matching distribution found for x\n"
    assert last_error(output) == "No matching distribution found for x"
    assert last_error("/usr/bin/python: No module named pip\n") == "/usr/bin/python: No module named pip"
    assert len(last_error("ERROR: " + "x" * 500)) == 200
    assert last_error("") == "pip failed without a message"
