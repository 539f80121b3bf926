"""What a score.py on a multi-model endpoint calls to get its models from the process's model repository.

    from scoring_runtime import leased_model, load_model

    def run(data):
        # Loaded on first use; held for the block, so never evicted under it.
        with leased_model("churn", loader=lambda folder: joblib.load(folder / "model.pkl")) as churn:
            return churn.predict(data).tolist()

The app configures one repository per process; a single-model deployment has none.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from scoring_runtime.errors import ModelNotFoundError
from scoring_runtime.models.repository import ModelRepository

_repository: ModelRepository[Any] | None = None


def configure(repository: ModelRepository[Any] | None) -> None:
    """Set (None: clear) the repository the script API serves from; the app calls it once per process."""
    global _repository
    _repository = repository


def configured() -> ModelRepository[Any] | None:
    """The repository scripts get their models from, if any."""
    return _repository


def load_model(name: str, version: str | None = None, loader: Callable[[Path], Any] | None = None) -> Any:
    """The model `name` (`version` None: the latest), loaded once by `loader(folder)`, or by the repository's own
    loader when None. A model already loaded is returned as it is, whichever loader loaded it.

    The result is not leased: the repository may evict it once idle to keep within its memory budget. The object
    itself lives as long as the script references it, but its memory is then counted nowhere, and the next
    `load_model` after an eviction loads a second copy. To hold a model for a request, use `with leased_model(...)`.

    Raises ModelNotFoundError on a deployment without a model repository, NotFound for an unknown name or version,
    ModelUnavailable when the model fails to load or has been unloaded.
    """
    with leased_model(name, version, loader) as value:
        return value


def leased_model(
    name: str, version: str | None = None, loader: Callable[[Path], Any] | None = None
) -> AbstractContextManager[Any]:
    """A lease on the model, as `load_model` finds or loads it: while the with-block runs, the model is not evicted."""
    repository = _repository
    if repository is None:
        raise ModelNotFoundError(
            f"Model '{name}' cannot be loaded: this deployment has no multi-model repository (a folder of "
            "<name>/<version>/ model folders). In a single-model deployment, find the model with get_model_path() "
            "or AZUREML_MODEL_DIR and load it in init()"
        )
    return repository.lease(name, version, None if loader is None else _by_folder(loader))


def _by_folder(loader: Callable[[Path], Any]) -> Callable[[str, str, Path], Any]:
    def load(name: str, version: str, folder: Path) -> Any:
        return loader(folder)

    return load
