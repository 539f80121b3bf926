"""The Python requirements of a package: read from requirements.txt or a conda environment.yml, and downloaded as
wheels for the image's platform when the package is made, so that building the image needs no network."""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scoring_runtime.packaging.errors import PackageError

# The image's platform: x86-64 Linux with glibc (Debian bookworm has 2.36). pip takes each tag it may use.
PLATFORMS = ("manylinux2014_x86_64", "manylinux_2_17_x86_64", "manylinux_2_28_x86_64")
# Lines that name another file: the image installs from requirements.txt alone, where that file is not.
_INCLUDE = re.compile(r"-[rc]|--requirement\b|--constraint\b")
# What a conda environment always lists and the image already has.
_CONDA_BUILTINS = frozenset({"python", "pip"})


@dataclass(frozen=True)
class Requirements:
    lines: tuple[str, ...]  # requirements.txt in the image
    source: Path
    conda_only: tuple[str, ...] = ()  # a conda environment's packages that pip does not install

    @property
    def text(self) -> str:
        return "".join(f"{line}\n" for line in self.lines)


def from_requirements_file(text: str) -> Requirements:
    path = _readable(text, "--requirements")
    return Requirements(_requirement_lines(path.read_text().splitlines(), path), path)


def from_conda_file(text: str) -> Requirements:
    """The `pip:` section of a conda environment file; its conda packages are reported, not installed."""
    path = _readable(text, "--conda")
    dependencies = _conda_dependencies(path)
    pip_lines: list[str] = []
    conda_only: list[str] = []
    for entry in dependencies:
        if isinstance(entry, dict) and set(entry) == {"pip"} and isinstance(entry["pip"], list):
            pip_lines += [str(line) for line in entry["pip"]]
        elif isinstance(entry, (str, int, float)):
            if _conda_name(str(entry)) not in _CONDA_BUILTINS:
                conda_only.append(str(entry))
        else:
            raise PackageError(f"--conda {text}: dependency {entry!r} is neither a conda package nor a pip: list")
    return Requirements(_requirement_lines(pip_lines, path), path, tuple(conda_only))


def download(requirements: Path, wheelhouse: Path, python_version: str) -> None:
    """Every wheel `requirements` needs, with its dependencies, for CPython `python_version` on the image's
    platform. pip's own settings apply (PIP_INDEX_URL, PIP_FIND_LINKS, pip.conf), as they would to an install."""
    platforms = [option for platform in PLATFORMS for option in ("--platform", platform)]
    command = [
        *(sys.executable, "-m", "pip", "download", "--dest", str(wheelhouse), "--only-binary=:all:"),
        *platforms,
        *("--implementation", "cp", "--python-version", python_version),
        *("--disable-pip-version-check", "--no-input", "--requirement", str(requirements)),
    ]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise PackageError(
            f"pip cannot download the requirements ({last_error(done.stderr + done.stdout)}): check their names and "
            f"versions, and that each has a wheel for CPython {python_version} on manylinux x86-64"
        )


def last_error(output: str, limit: int = 200) -> str:
    """pip's last error line, shortened: the one that names what could not be found."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("ERROR:")]
    line = (errors or lines or ["pip failed without a message"])[-1].removeprefix("ERROR:").strip()
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _readable(text: str, flag: str) -> Path:
    path = Path(text)
    if not path.is_file():
        raise PackageError(f"{flag} {text} is not a file: give the path of the file")
    return path


def _requirement_lines(lines: list[str], source: Path) -> tuple[str, ...]:
    kept = tuple(line.strip() for line in lines if line.strip() and not line.strip().startswith("#"))
    for line in kept:
        if _INCLUDE.match(line):
            raise PackageError(
                f"{source}: '{line}' names another file, which the image does not have; put its lines in this one"
            )
    return kept


def _conda_dependencies(path: Path) -> list[Any]:
    try:
        import yaml
    except ImportError:
        raise PackageError(f"reading the conda file {path} needs PyYAML: pip install pyyaml") from None
    try:
        environment = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        raise PackageError(f"--conda {path} is not valid YAML{line}: give a conda environment.yml") from None
    dependencies = environment.get("dependencies") if isinstance(environment, dict) else None
    if not isinstance(dependencies, list) or not dependencies:
        raise PackageError(f"--conda {path} has no dependencies: list; give a conda environment.yml")
    return dependencies


def _conda_name(spec: str) -> str:
    # `conda-forge::numpy>=1.26`, `python=3.11`, `pip 23.*`: the package's name without channel or version.
    return re.split(r"[\s=<>!~\[]", spec.split("::")[-1].strip(), maxsplit=1)[0].lower()
