"""A small project to package (a score.py, a helper module, a model folder) and pip kept off the network."""

from __future__ import annotations

import base64
import hashlib
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from scoring_runtime.packaging import main


@dataclass(frozen=True)
class Outcome:
    status: int
    out: str
    err: str


Packager = Callable[..., Outcome]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """tmp_path, the current directory, with app/score.py, app/lib/helper.py and models/iris/model.pkl."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "app" / "lib").mkdir(parents=True)
    (tmp_path / "app" / "score.py").write_text("def init():\n    pass\n\n\ndef run(data):\n    return data\n")
    (tmp_path / "app" / "lib" / "helper.py").write_text("VALUE = 1\n")
    (tmp_path / "models" / "iris").mkdir(parents=True)
    (tmp_path / "models" / "iris" / "model.pkl").write_bytes(b"not really a pickle")
    return tmp_path


@pytest.fixture
def package(capsys: pytest.CaptureFixture[str]) -> Packager:
    """`scoring-runtime package ARGS...` in this process: its exit status and what it printed."""

    def run(*args: str) -> Outcome:
        status = main(list(args))
        captured = capsys.readouterr()
        return Outcome(status, captured.out, captured.err)

    return run


@pytest.fixture
def wheels(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """pip finds packages only in the folder returned, which holds tiny 1.0 (its own config files are not read)."""
    folder = tmp_path / "wheels"
    folder.mkdir()
    make_wheel(folder, "tiny", "1.0")
    monkeypatch.setenv("PIP_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(folder))
    return folder


def make_wheel(
    folder: Path, name: str, version: str, requires: tuple[str, ...] | list[str] = (), tag: str = "py3-none-any"
) -> Path:
    """A valid wheel of one pure-Python module, written by hand (no build backend needed)."""
    module = name.replace("-", "_")
    info = f"{module}-{version}.dist-info"
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    metadata += "".join(f"Requires-Dist: {requirement}\n" for requirement in requires)
    contents = {
        f"{module}/__init__.py": "VALUE = 1\n",
        f"{info}/METADATA": metadata,
        f"{info}/WHEEL": f"Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: {tag}\n",
    }
    record = "".join(f"{path},sha256={_digest(text)},{len(text.encode())}\n" for path, text in contents.items())
    contents[f"{info}/RECORD"] = record + f"{info}/RECORD,,\n"
    wheel = folder / f"{module}-{version}-{tag}.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, text in contents.items():
            archive.writestr(path, text)
    return wheel


def _digest(text: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()


def tree(folder: Path) -> list[str]:
    """Every file under `folder`, relative, sorted."""
    return sorted(path.relative_to(folder).as_posix() for path in folder.rglob("*") if path.is_file())
