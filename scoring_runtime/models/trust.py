"""A model file is code: load nothing the operator did not trust.

Pickles (plain and joblib's) go through a restricted unpickler (unpickle.py) unless SCORING_TRUST_PICKLE is set;
a .skops file may hold beyond skops' defaults only the types SCORING_SKOPS_TRUSTED names; with SCORING_MODEL_SHA256
set, the artifact must have that digest before anything reads it; and a model loads only from the configured folder.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from scoring_runtime.config import missing_module
from scoring_runtime.errors import ModelLoadError, ModelRefused
from scoring_runtime.models.base import LoadOptions
from scoring_runtime.models.unpickle import MissingGlobal, Refused
from scoring_runtime.models.unpickle_joblib import joblib_version, load_restricted

logger = logging.getLogger("azmlinfsrv")

_CHUNK = 1024 * 1024
_TRUST_HINT = "set SCORING_TRUST_PICKLE=true if you trust this file"
_INSTALL_SKLEARN = "pip install 'scoring-runtime[sklearn]'"


def verify_digest(path: Path, expected: str | None) -> None:
    """Check `path` against SCORING_MODEL_SHA256 (hex, any case) when it is set; ModelRefused on a mismatch.

    A file's digest is its SHA-256. A directory's (a TensorFlow SavedModel) is the SHA-256 of one line per file under
    it, `<sha256 of the file>  <path relative to the directory>\\n` (as sha256sum prints them), sorted by path; symbolic
    links to files count as their targets. The shell gives the same:
    `cd DIR && find -L . -type f -printf '%P\\0' | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum`.
    """
    if expected is None:
        return
    try:
        actual = _directory_digest(path) if path.is_dir() else _file_digest(path)
    except OSError as exc:
        raise ModelLoadError(f"{path} cannot be read to check SCORING_MODEL_SHA256: {exc}") from None
    if actual != expected.strip().lower():
        raise ModelRefused(
            f"{path} does not have the digest SCORING_MODEL_SHA256 pins: expected {expected.strip()}, found {actual}"
        )


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _directory_files(root: Path) -> Iterator[str]:
    for folder, dirs, files in os.walk(root):
        for name in dirs:
            if os.path.islink(os.path.join(folder, name)):  # would be hashed twice, or forever in a cycle
                raise ModelRefused(
                    f"{root} holds a symbolic link to a directory, {os.path.join(folder, name)}, "
                    "which SCORING_MODEL_SHA256 cannot pin"
                )
        for name in files:
            yield Path(os.path.relpath(os.path.join(folder, name), root)).as_posix()


def _directory_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for relative in sorted(_directory_files(root)):
        digest.update(f"{_file_digest(root / relative)}  {relative}\n".encode())
    return digest.hexdigest()


def confined(path: Path, root: Path) -> Path:
    """`path` resolved (symbolic links followed); ModelRefused if that is outside the resolved `root`."""
    resolved, folder = path.resolve(), root.resolve()
    if not resolved.is_relative_to(folder):
        raise ModelRefused(
            f"{path} resolves to {resolved}, outside the model folder {folder}: models load only from the "
            "configured folder"
        )
    return resolved


def load_pickle(path: Path, options: LoadOptions) -> tuple[Any, list[str]]:
    """The object in a .pkl/.pickle or .joblib file (either format, whatever the extension says), and the texts of
    the warnings raised while loading it (each also logged).

    Restricted unless `options.trust_pickle`: a file naming anything outside unpickle.py's rules raises ModelRefused
    naming it; a corrupt or truncated file raises ModelLoadError.
    """
    verify_digest(path, options.sha256)
    load = _load_trusted if options.trust_pickle else load_restricted
    try:
        return _capturing_warnings(path, load)
    except Refused as exc:
        raise ModelRefused(f"{path} {exc.what}; {_TRUST_HINT}") from None
    except MissingGlobal as exc:
        raise ModelLoadError(f"{path} cannot be loaded: {exc}") from None
    except ModelLoadError:
        raise
    except Exception as exc:  # whatever a corrupt stream makes the unpickler or a decompressor raise
        raise ModelLoadError(f"{path} cannot be unpickled: {_reason(exc)}") from None


def _load_trusted(path: Path) -> Any:
    if joblib_version() is not None:  # joblib reads plain pickles as well as its own format
        import joblib  # type: ignore[import-untyped]

        return joblib.load(path)
    with path.open("rb") as file:
        return pickle.load(file)


def load_skops(path: Path, options: LoadOptions) -> tuple[Any, list[str]]:
    """The object in a .skops file, and the texts of the warnings raised while loading it. Every type skops does not
    trust by default must be among those the operator names in SCORING_SKOPS_TRUSTED; ModelRefused otherwise."""
    verify_digest(path, options.sha256)
    if missing_module(("skops",)) is not None:
        raise ModelLoadError(f"{path} is a .skops file and skops is not installed: {_INSTALL_SKLEARN}")
    import skops.io  # type: ignore[import-untyped]

    try:
        untrusted = skops.io.get_untrusted_types(file=path)
    except Exception as exc:
        raise ModelLoadError(f"{path} cannot be read as a .skops file: {_reason(exc)}") from None
    refused = sorted(set(untrusted) - set(options.skops_trusted))
    if refused:
        raise ModelRefused(
            f"{path} holds types that skops does not trust by default: {', '.join(refused)}; "
            "list those you trust in SCORING_SKOPS_TRUSTED (comma-separated)"
        )
    # The operator's names, never the file's: what the file holds beyond them was refused above.
    trusted = list(options.skops_trusted)
    try:
        return _capturing_warnings(path, lambda file: skops.io.load(file, trusted=trusted))
    except Exception as exc:
        raise ModelLoadError(f"{path} cannot be loaded by skops: {_reason(exc)}") from None


def _capturing_warnings(path: Path, load: Callable[[Path], Any]) -> tuple[Any, list[str]]:
    """`load(path)` and the texts of the warnings it raised, each logged once. Recorded, never raised: a model trained
    with another scikit-learn version (InconsistentVersionWarning) is served, and its metadata says so."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = load(path)
    texts = list(dict.fromkeys(str(warning.message) for warning in caught))
    for text in texts:
        logger.warning("Loading %s: %s", path, text)
    return loaded, texts


def _reason(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
