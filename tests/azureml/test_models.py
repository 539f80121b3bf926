from __future__ import annotations

from pathlib import Path

import pytest

from scoring_runtime import ModelNotFoundError, get_model_path


def make(root: Path, *folders: str) -> None:
    for folder in folders:
        (root / folder).mkdir(parents=True)
        (root / folder / "model.pkl").write_text("x")


@pytest.fixture
def model_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("AML_APP_ROOT", str(tmp_path / "app"))
    (tmp_path / "app").mkdir()
    return tmp_path


def test_multi_model_layout_picks_highest_version(model_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = model_env / "models"
    make(root, "first/1", "second/1", "second/2", "second/10")
    monkeypatch.setenv("AZUREML_MODEL_DIR", str(root))
    assert get_model_path("first") == str(root / "first" / "1")
    assert get_model_path("second") == str(root / "second" / "10")
    assert get_model_path("second", 2) == str(root / "second" / "2")
    assert get_model_path("second", "1") == str(root / "second" / "1")
    with pytest.raises(
        ModelNotFoundError, match=r"Model 'second' version 3 is not deployed; deployed versions: 1, 2, 10"
    ):
        get_model_path("second", 3)
    with pytest.raises(ModelNotFoundError) as info:
        get_model_path("third")
    assert str(info.value) == "Model 'third' not found. Deployed models: first (versions 1), second (versions 1, 2, 10)"
    assert isinstance(info.value, LookupError)


def test_single_model_layout_is_the_folder_itself(model_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = model_env / "azureml-models-mount" / "sklearn_mnist" / "3"
    make(root.parent, "3")
    monkeypatch.setenv("AZUREML_MODEL_DIR", str(root))
    assert get_model_path("sklearn_mnist") == str(root)
    assert get_model_path("sklearn_mnist", 3) == str(root)
    with pytest.raises(ModelNotFoundError, match="version 4 is not deployed"):
        get_model_path("sklearn_mnist", 4)
    with pytest.raises(ModelNotFoundError, match=r"Deployed models: sklearn_mnist$"):
        get_model_path("other")


def test_single_model_folder_without_version(model_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = model_env / "diabetes"
    root.mkdir()
    monkeypatch.setenv("AZUREML_MODEL_DIR", str(root))
    assert get_model_path("diabetes") == str(root)


def test_azureml_models_under_app_root(model_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make(model_env / "app" / "azureml-models", "mymodel/1", "mymodel/2")
    monkeypatch.delenv("AZUREML_MODEL_DIR", raising=False)
    assert get_model_path("mymodel") == str(model_env / "app" / "azureml-models" / "mymodel" / "2")


def test_nothing_deployed(model_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AZUREML_MODEL_DIR", raising=False)
    with pytest.raises(ModelNotFoundError, match="AZUREML_MODEL_DIR is not set"):
        get_model_path("anything")
