"""--build: the container tool chosen, and how it is called. No image is built here: the tools are fakes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from scoring_runtime.packaging.build import build_command
from scoring_runtime.packaging.errors import PackageError
from tests.packaging.conftest import Packager

CONTEXT = Path("/work/ctx")


def which_of(*found: str) -> dict[str, str]:
    return {tool: f"/usr/bin/{tool}" for tool in found}


@pytest.mark.parametrize(
    ("found", "argv"),
    [
        (("docker", "podman", "buildah"), ("/usr/bin/docker", "build", "-t", "iris:latest", "/work/ctx")),
        (("podman", "buildah"), ("/usr/bin/podman", "build", "--format", "docker", "-t", "iris:latest", "/work/ctx")),
        (("buildah",), ("/usr/bin/buildah", "bud", "--format", "docker", "-t", "iris:latest", "/work/ctx")),
    ],
)
def test_the_first_tool_found_builds(found: tuple[str, ...], argv: tuple[str, ...]) -> None:
    command = build_command(CONTEXT, "iris:latest", which_of(*found).get)
    assert command.tool == found[0]
    assert command.argv == argv


def test_no_tool_is_an_error() -> None:
    with pytest.raises(PackageError, match=r"^--build needs one of docker, podman, buildah on PATH"):
        build_command(CONTEXT, "iris:latest", which_of().get)


def fake_tool(folder: Path, name: str, status: int) -> Path:
    """A `name` on PATH that records its arguments and exits with `status`."""
    folder.mkdir(exist_ok=True)
    tool = folder / name
    tool.write_text(f'#!/bin/sh\necho "$@" > "{folder}/{name}.args"\nexit {status}\n')
    tool.chmod(0o755)
    return folder / f"{name}.args"


def test_build_runs_the_tool_on_the_context(project: Path, package: Packager, monkeypatch: pytest.MonkeyPatch) -> None:
    recorded = fake_tool(project / "bin", "podman", 0)
    monkeypatch.setenv("PATH", str(project / "bin"))
    done = package("--model_dir", "models/iris", "--output", "iris-image", "--build")
    assert done.status == 0, done.err
    assert "scoring-runtime package: building iris-image:latest with podman\n" in done.out
    assert recorded.read_text().split() == [
        "build",
        "--format",
        "docker",
        "-t",
        "iris-image:latest",
        str(project / "iris-image"),
    ]


def test_a_failed_build_keeps_the_context(project: Path, package: Packager, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_tool(project / "bin", "docker", 7)
    monkeypatch.setenv("PATH", str(project / "bin"))
    done = package("--model_dir", "models/iris", "--output", "ctx", "--build", "--tag", "me/iris:2")
    assert done.status == 7
    assert done.err == "scoring-runtime package: docker failed with exit status 7; the context stays in ctx\n"
    assert (project / "ctx" / "Dockerfile").is_file()


def test_without_a_tool_nothing_is_written(project: Path, package: Packager, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", os.devnull)
    done = package("--model_dir", "models/iris", "--output", "ctx", "--build")
    assert done.status == 3
    assert done.err.count("\n") == 1 and "--build needs one of docker, podman, buildah" in done.err
    assert not (project / "ctx").exists()


def test_the_default_tag_is_a_valid_image_name(project: Path, package: Packager) -> None:
    done = package("--model_dir", "models/iris", "--output", "My_Iris Image")
    assert done.status == 0, done.err
    assert "docker build -t my-iris-image:latest 'My_Iris Image'\n" in done.out
