"""Where deployed models live: `get_model_path`, the analogue of azureml's `Model.get_model_path`.

Layouts understood:
- single model: AZUREML_MODEL_DIR is the model's folder (Azure ML mounts it as `.../<name>/<version>`);
- several models: AZUREML_MODEL_DIR holds `<name>/<version>/` folders;
- the same `<name>/<version>/` folders under `<AML_APP_ROOT>/azureml-models/`.
"""

from __future__ import annotations

import os
from pathlib import Path

from scoring_runtime.errors import ModelNotFoundError


def get_model_path(model_name: str, version: int | str | None = None) -> str:
    """Return the folder of the deployed model `model_name`; the highest version when `version` is None."""
    roots = _model_roots()
    found: dict[str, list[int]] = {}
    for root in roots:
        models = _models_under(root)
        for name, versions in models.items():
            found.setdefault(name, []).extend(versions)
        if model_name in models:
            return str(_pick(root / model_name, model_name, models[model_name], version))
        single = _single_model(root, models)
        if single is not None and single[0] == model_name:
            name, own_version = single
            if version is not None and own_version is not None and str(version) != str(own_version):
                raise ModelNotFoundError(f"Model {name!r} version {version} is not deployed; deployed: {own_version}")
            return str(root)
        if single is not None:
            found.setdefault(single[0], [])
    if not roots:
        raise ModelNotFoundError(
            f"Model {model_name!r} not found: AZUREML_MODEL_DIR is not set and there is no azureml-models folder"
        )
    listing = ", ".join(
        f"{name} (versions {', '.join(map(str, sorted(v)))})" if v else name for name, v in sorted(found.items())
    )
    raise ModelNotFoundError(f"Model {model_name!r} not found. Deployed models: {listing or 'none'}")


def _model_roots() -> list[Path]:
    roots = []
    model_dir = os.environ.get("AZUREML_MODEL_DIR")
    if model_dir and Path(model_dir).is_dir():
        roots.append(Path(model_dir).absolute())
    app_models = Path(os.environ.get("AML_APP_ROOT") or os.getcwd()) / "azureml-models"
    if app_models.is_dir() and app_models.absolute() not in roots:
        roots.append(app_models.absolute())
    return roots


def _versions(folder: Path) -> list[int]:
    return [int(child.name) for child in folder.iterdir() if child.is_dir() and child.name.isdigit()]


def _models_under(root: Path) -> dict[str, list[int]]:
    """Children of `root` that hold integer version folders: the multi-model layout."""
    models = {}
    for child in root.iterdir():
        if child.is_dir() and not child.name.isdigit():
            versions = _versions(child)
            if versions:
                models[child.name] = versions
    return models


def _single_model(root: Path, models: dict[str, list[int]]) -> tuple[str, int | None] | None:
    """The (name, version) of `root` when it is itself one model's folder."""
    if models:
        return None
    if root.name.isdigit():
        return root.parent.name, int(root.name)
    return root.name, None


def _pick(folder: Path, name: str, versions: list[int], version: int | str | None) -> Path:
    if version is None:
        return folder / str(max(versions))
    if str(version).isdigit() and int(version) in versions:
        return folder / str(int(version))
    raise ModelNotFoundError(
        f"Model {name!r} version {version} is not deployed; deployed versions: {', '.join(map(str, sorted(versions)))}"
    )
