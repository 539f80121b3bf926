"""Writing the build context: in a folder beside the output, renamed into place only once it is complete, so that a
failure (or an interrupt) leaves nothing behind, and --force replaces the old context only with a whole new one."""

from __future__ import annotations

import os
import secrets
import shutil
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from fnmatch import fnmatch
from pathlib import Path

from scoring_runtime.packaging import files
from scoring_runtime.packaging.errors import PackageError
from scoring_runtime.packaging.inputs import Model, Package
from scoring_runtime.packaging.requirements import download

# Never part of an app: caches and version control. Virtual environments are found by their marker files.
SKIPPED = ("__pycache__", "*.pyc", ".git", ".hg", ".svn", ".tox", ".mypy_cache", ".pytest_cache", ".ruff_cache")
ENVIRONMENT_MARKERS = ("pyvenv.cfg", "conda-meta")
# This module's own folders (a context being written, an old one being replaced), wherever a crash left them.
_OURS = (".*.partial", ".*.replaced")

Ignore = Callable[[str, list[str]], set[str]]


def write(package: Package, progress: Callable[[str], None]) -> None:
    try:
        with _staging(package.output) as staging:
            _fill(package, staging, progress)
            _publish(staging, package.output, package.force)
    except OSError as exc:  # a full disk, a folder we may not write to
        raise PackageError(f"cannot write {exc.filename or package.output}: {exc.strerror or exc}") from None


def _fill(package: Package, staging: Path, progress: Callable[[str], None]) -> None:
    # The download first: it is what fails most, and the copies of large models take longest.
    if package.installs:
        assert package.requirements is not None
        requirements = staging / files.REQUIREMENTS
        requirements.write_text(package.requirements.text)
        progress(f"downloading the requirements' wheels for CPython {package.python_version} (pip download)")
        download(requirements, staging / files.WHEELHOUSE, package.python_version)
    excluded = {os.path.realpath(path) for path in (package.output, staging)}
    if package.source_dir is not None:
        _copy(package.source_dir, staging / files.APP, _ignore(excluded, app=True))
    for model in package.models:
        _copy_model(model, staging / files.MODELS / model.name / model.version, _ignore(excluded, app=False))
    (staging / "Dockerfile").write_text(files.dockerfile(package))
    (staging / ".dockerignore").write_text(files.dockerignore(package))
    (staging / "README.md").write_text(files.readme(package))
    _make_readable(staging)


def _copy_model(model: Model, target: Path, ignore: Ignore) -> None:
    if model.path.is_dir():
        _copy(model.path, target, ignore)
        return
    target.mkdir(parents=True)
    try:
        shutil.copy2(model.path, target / model.path.name)
    except OSError as exc:
        raise PackageError(f"cannot copy the model {model.path}: {exc.strerror or exc}") from None


def _copy(source: Path, target: Path, ignore: Ignore) -> None:
    try:
        shutil.copytree(source, target, ignore=ignore)
    except shutil.Error as exc:
        # One (source, destination, reason) per file that failed: the first says enough.
        first = exc.args[0][0] if exc.args and isinstance(exc.args[0], list) and exc.args[0] else (source, "", exc)
        raise PackageError(f"cannot copy {first[0]}: {first[2]}") from None
    except OSError as exc:
        raise PackageError(f"cannot copy {source}: {exc.strerror or exc}") from None


def _ignore(excluded: set[str], app: bool) -> Ignore:
    def ignore(folder: str, names: list[str]) -> set[str]:
        skipped = set()
        for name in names:
            path = os.path.join(folder, name)
            if any(fnmatch(name, pattern) for pattern in _OURS):
                skipped.add(name)
            elif app and (any(fnmatch(name, pattern) for pattern in SKIPPED) or _is_environment(path)):
                skipped.add(name)
            elif os.path.isdir(path) and os.path.realpath(path) in excluded:
                skipped.add(name)
        return skipped

    return ignore


def _is_environment(path: str) -> bool:
    return any(os.path.exists(os.path.join(path, marker)) for marker in ENVIRONMENT_MARKERS)


def _make_readable(folder: Path) -> None:
    # The image's server runs as uid 1000 and reads files root owns: a file only its owner may read here could not
    # be read there (COPY keeps the modes).
    for root, folders, names in os.walk(folder):
        for name in folders:
            _add_mode(os.path.join(root, name), stat.S_IRUSR | stat.S_IXUSR | 0o055)
        for name in names:
            _add_mode(os.path.join(root, name), stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)


def _add_mode(path: str, bits: int) -> None:
    mode = os.lstat(path).st_mode
    if not stat.S_ISLNK(mode) and mode & bits != bits:
        os.chmod(path, stat.S_IMODE(mode) | bits)


@contextmanager
def _staging(output: Path) -> Iterator[Path]:
    created = _make_parents(output.parent)
    staging = output.parent / f".{output.name}.{secrets.token_hex(4)}.partial"
    try:
        staging.mkdir()
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        for folder in reversed(created):
            _remove_empty(folder)
        raise


def _make_parents(folder: Path) -> list[Path]:
    """Create `folder` and its missing parents; the ones created, outermost first."""
    missing = [parent for parent in (folder, *folder.parents) if not parent.exists()][::-1]
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PackageError(f"cannot create the folder {folder}: {exc.strerror or exc}") from None
    return missing


def _remove_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:
        pass  # something else was put there meanwhile: it is not ours to remove


def _publish(staging: Path, output: Path, force: bool) -> None:
    if output.is_dir() and not any(output.iterdir()):
        output.rmdir()
    if not output.exists():
        staging.rename(output)
        return
    if not force:  # it was empty or absent when the inputs were checked; something else wrote it since
        raise PackageError(f"{output} was written to while the package was made: run the command again")
    # --force: the old context is moved aside, and put back if the new one cannot take its place.
    old = output.parent / f".{output.name}.{secrets.token_hex(4)}.replaced"
    output.rename(old)
    try:
        staging.rename(output)
    except BaseException:
        old.rename(output)
        raise
    shutil.rmtree(old, ignore_errors=True)
