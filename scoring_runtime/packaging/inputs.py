"""What is packaged: the entry script and its source folder, the models and their names, the output folder.

Every path is checked here, before anything is written.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from scoring_runtime.packaging.errors import PackageError, UsageError
from scoring_runtime.packaging.requirements import Requirements

MODELS_ROOT = PurePosixPath("/var/azureml-models")
# A model's name and version become folder names and /v2/models/{name} path segments, as on Azure ML.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*\Z")


@dataclass(frozen=True)
class Model:
    name: str
    version: str
    path: Path  # a folder, or a single file, as Azure ML registers either


@dataclass(frozen=True)
class Package:
    output: Path  # absolute, symlinks resolved
    shown_output: str  # as typed (quoted for a shell), for the commands printed and written into the README
    source_dir: Path | None
    entry_script: PurePosixPath | None  # relative to source_dir
    models: tuple[Model, ...]
    requirements: Requirements | None
    base_image: str
    python_version: str
    tag: str
    force: bool

    @property
    def model_dir(self) -> str | None:
        """AZUREML_MODEL_DIR in the image: the model's own folder, or the `<name>/<version>/` folder of several."""
        if not self.models:
            return None
        if len(self.models) == 1:
            return str(MODELS_ROOT / self.models[0].name / self.models[0].version)
        return str(MODELS_ROOT)

    @property
    def installs(self) -> bool:
        return self.requirements is not None and bool(self.requirements.lines)


def checked_name(text: str, what: str) -> None:
    if not _NAME.match(text):
        raise UsageError(f"{what} {text!r} is not a valid name: use letters, digits, '.', '_' and '-'")


def model_from_dir(text: str) -> Model:
    """--model_dir DIR: named after its folder, version 1, unless the folder is Azure ML's `<name>/<version>`."""
    path = Path(text).resolve()
    if not path.exists():
        raise PackageError(f"--model_dir {text} does not exist: give the folder (or file) of the model")
    name, version = (path.parent.name, path.name) if path.name.isdigit() and path.parent.name else (path.stem, "1")
    if not _NAME.match(name):
        raise UsageError(f"--model_dir {text} gives the model name {name!r}; name it with --model NAME:1={text}")
    return Model(name, version, path)


def model_from_spec(spec: str) -> Model:
    """--model NAME:VERSION=PATH."""
    named, equals, text = spec.partition("=")
    name, colon, version = named.partition(":")
    if not (equals and colon and name and version and text):
        raise UsageError(f"--model {spec}: write it NAME:VERSION=PATH, such as --model iris:1=models/iris")
    checked_name(name, "--model name")
    checked_name(version, "--model version")
    path = Path(text).resolve()
    if not path.exists():
        raise PackageError(f"--model {spec}: {text} does not exist; give the folder (or file) of the model")
    return Model(name, version, path)


def all_models(model_dir: str | None, specs: list[str]) -> tuple[Model, ...]:
    if model_dir is not None:
        return (model_from_dir(model_dir),)
    models = tuple(model_from_spec(spec) for spec in specs)
    seen: set[tuple[str, str]] = set()
    for model in models:
        if (model.name, model.version) in seen:
            raise UsageError(f"--model {model.name}:{model.version} is given twice; give each version once")
        seen.add((model.name, model.version))
    return models


def entry_script(text: str, source: Path | None) -> tuple[Path, PurePosixPath]:
    """The source folder (by default the script's) and the script's path in it. A relative script is looked for where
    the command runs, then, as Azure ML's code configuration names it, in the source folder."""
    candidates = [_absolute(text)]
    if source is not None and not Path(text).is_absolute():
        candidates.append(source / text)
    found = [candidate for candidate in candidates if candidate.is_file()]
    if not found:
        raise PackageError(f"--entry_script {text} is not a file: give the path of score.py")
    source = source or found[0].parent
    for script in found:
        relative = _inside(script, source)
        if relative is not None:
            return source, relative
    raise PackageError(
        f"--entry_script {text} is outside --source_dir {source}: only the source folder is copied into the image; "
        "move the script into it, or give a --source_dir that holds both"
    )


def source_folder(text: str) -> Path:
    source = _absolute(text)
    if not source.is_dir():
        raise PackageError(f"--source_dir {text} is not a folder: give the folder that holds the code")
    return source


def output_folder(text: str, force: bool, inputs: list[Path]) -> Path:
    output = Path(text).resolve()
    if output.exists() and not output.is_dir():
        raise PackageError(f"--output {text} is a file: name a folder to create")
    if output.is_dir() and any(output.iterdir()) and not force:
        raise PackageError(f"--output {text} exists and is not empty: name a new folder, or pass --force to replace it")
    # The folder is replaced as a whole (--force): never one the user works in.
    for path in (*inputs, Path.cwd()):
        real = path.resolve()
        if output == real or output in real.parents:
            raise PackageError(f"--output {text} holds {path}: name a new folder, outside the inputs")
    return output


def default_tag(output: Path) -> str:
    # Image names are lower case letters and digits, with separators between them.
    return (re.sub(r"[^a-z0-9]+", "-", output.name.lower()).strip("-") or "scoring-app") + ":latest"


def _absolute(text: str) -> Path:
    # Lexical, not resolved: a script that is a symlink inside the source folder is still inside it.
    return Path(os.path.abspath(text))


def _inside(path: Path, folder: Path) -> PurePosixPath | None:
    for candidate, parent in ((path, folder), (path.resolve(), folder.resolve())):
        if parent in candidate.parents:
            return PurePosixPath(candidate.relative_to(parent).as_posix())
    return None
