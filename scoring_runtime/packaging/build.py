"""--build: the context built into an image by the first container tool on PATH."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from scoring_runtime.packaging.errors import PackageError

# In order of preference, each with how it builds a Dockerfile. Podman and buildah write OCI images by default, which
# have no HEALTHCHECK: the base image's would be dropped.
BUILDERS = (
    ("docker", ("build",)),
    ("podman", ("build", "--format", "docker")),
    ("buildah", ("bud", "--format", "docker")),
)


@dataclass(frozen=True)
class BuildCommand:
    tool: str
    argv: tuple[str, ...]


def build_command(context: Path, tag: str, which: Callable[[str], str | None]) -> BuildCommand:
    """The command that builds `context` as `tag`, with the first of BUILDERS that `which` finds."""
    for tool, verb in BUILDERS:
        found = which(tool)
        if found:
            return BuildCommand(tool, (found, *verb, "-t", tag, str(context)))
    names = ", ".join(tool for tool, _ in BUILDERS)
    raise PackageError(f"--build needs one of {names} on PATH: install one, or leave out --build and copy the context")


def run(command: BuildCommand) -> int:
    return subprocess.run(command.argv).returncode
