"""Which model a folder holds: its framework and file, told from the files themselves (or the operator's choice), and
the backend that loads it. A folder that cannot be told apart stops start-up with one line that says what was found
and what to do."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from scoring_runtime.errors import ModelLoadError
from scoring_runtime.models.base import LIGHTGBM, ONNX, SKLEARN, TENSORFLOW, XGBOOST, LoadOptions
from scoring_runtime.models.trust import confined

if TYPE_CHECKING:
    from scoring_runtime.models.base import ServedModel

# How deep under the model folder a model file is looked for: Azure ML puts a registered model's files under
# `<model_dir>/<registered folder>/`, sometimes one level further.
SEARCH_DEPTH = 3
_PICKLES = (".joblib", ".pkl", ".pickle", ".skops")
_XGBOOST = (".ubj", ".bst")
# The backend of each framework: module and function, imported only when a model of that framework is served.
_BACKENDS = {
    SKLEARN: ("scoring_runtime.models.sklearn_model", "load_sklearn"),
    ONNX: ("scoring_runtime.models.onnx_model", "load_onnx"),
    TENSORFLOW: ("scoring_runtime.models.tensorflow_model", "load_tensorflow"),
    XGBOOST: ("scoring_runtime.models.boosters", "load_xgboost"),
    LIGHTGBM: ("scoring_runtime.models.boosters", "load_lightgbm"),
}
WHAT_IS_SERVED = (
    "model.joblib, .pkl, .pickle or .skops (scikit-learn), *.onnx, a TensorFlow SavedModel (saved_model.pb), "
    "an XGBoost model (*.ubj, *.bst, *.json) or a LightGBM model.txt"
)


@dataclass(frozen=True)
class ModelSource:
    framework: str
    path: Path  # the file, or the folder of a SavedModel


def find_model(folder: Path, framework: str | None = None) -> ModelSource:
    """The one model under `folder` (its path resolved); ModelLoadError when there is none, or more than one and
    nothing to choose by; ModelRefused when it is a link to a file outside `folder`."""
    if not folder.is_dir():
        raise ModelLoadError(f"The model folder {folder} does not exist or is not a folder")
    found = sorted(set(_candidates(folder, SEARCH_DEPTH)), key=lambda source: (len(source.path.parts), source.path))
    if framework is not None:
        found = [source for source in found if source.framework == framework]
    if len(found) == 1:
        # A model file linked from elsewhere is not the configured folder's: models load only from there.
        return ModelSource(found[0].framework, confined(found[0].path, folder))
    if not found:
        wanted = f"a {framework} model" if framework else WHAT_IS_SERVED
        raise ModelLoadError(
            f"No model found in {folder}: expected {wanted}. Give --entry_script to serve a score.py instead"
        )
    listing = ", ".join(f"{source.path.relative_to(folder)} ({source.framework})" for source in found)
    advice = "keep one in the folder" if framework else "keep one, or set --model_framework (AZUREML_MODEL_FRAMEWORK)"
    raise ModelLoadError(f"Found {len(found)} models in {folder}: {listing}; {advice}")


def _candidates(folder: Path, depth: int) -> Iterator[ModelSource]:
    try:
        entries = sorted(folder.iterdir())
    except OSError as exc:
        raise ModelLoadError(f"The model folder {folder} cannot be read: {exc.strerror or exc}") from None
    if any(entry.name in ("saved_model.pb", "saved_model.pbtxt") for entry in entries):
        yield ModelSource(TENSORFLOW, folder)
        return  # its variables/ and assets/ are part of it
    for entry in entries:
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            if depth > 1:
                yield from _candidates(entry, depth - 1)
            continue
        source = _framework_of(entry)
        if source is not None:
            yield ModelSource(source, entry)


def _framework_of(file: Path) -> str | None:
    suffix = file.suffix.lower()
    if suffix in _PICKLES:
        return SKLEARN
    if suffix == ".onnx":
        return ONNX
    if suffix in _XGBOOST:
        return XGBOOST
    # Common names that are not models (a config, a tokenizer's vocabulary) must not be taken for one: these formats
    # are recognised from their first bytes.
    if suffix == ".json" and b'"learner"' in _head(file):
        return XGBOOST
    if file.name == "model.txt" and _head(file).startswith(b"tree\n"):
        return LIGHTGBM
    return None


def _head(file: Path) -> bytes:
    try:
        with file.open("rb") as stream:
            return stream.read(4096)
    except OSError:
        return b""


def is_multi_model(folder: Path) -> bool:
    """A folder of `<name>/<version>/` sub-folders and nothing else: served model by model."""
    names = _visible(folder)
    if not names or not all(entry.is_dir() for entry in names):
        return False
    for model in names:
        versions = _visible(model)
        if not versions or not all(entry.is_dir() for entry in versions):
            return False
    return True


def _visible(folder: Path) -> list[Path]:
    try:
        return [entry for entry in folder.iterdir() if not entry.name.startswith(".")]
    except OSError:
        return []


Loader = Callable[[Path, str, "str | None", LoadOptions], "ServedModel"]


def backend(framework: str) -> Loader:
    """The load function of a framework's backend; ModelLoadError naming the extra when its library is missing."""
    module_name, function = _BACKENDS[framework]
    module = importlib.import_module(module_name)
    loader: Loader = getattr(module, function)
    return loader


def load(source: ModelSource, name: str, version: str | None, options: LoadOptions) -> ServedModel:
    return backend(source.framework)(source.path, name, version, options)
