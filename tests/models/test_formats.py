"""Which model a folder holds: each format told from its files (not any .json or .txt), the operator's framework
choice, the one-line refusals, and the multi-model layout."""

from __future__ import annotations

from pathlib import Path

import pytest

from scoring_runtime.errors import ModelLoadError, ModelRefused
from scoring_runtime.models import formats
from scoring_runtime.models.formats import ModelSource, find_model, is_multi_model


def touch(path: Path, content: bytes = b"") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


@pytest.mark.parametrize(
    ("name", "content", "framework"),
    [
        ("model.joblib", b"", "sklearn"),
        ("model.PKL", b"", "sklearn"),
        ("m.pickle", b"", "sklearn"),
        ("m.skops", b"", "sklearn"),
        ("net.onnx", b"", "onnx"),
        ("trees.ubj", b"", "xgboost"),
        ("trees.bst", b"", "xgboost"),
        ("trees.json", b'{"learner": {"attributes": {}}, "version": [2, 1, 0]}', "xgboost"),
        ("model.txt", b"tree\nversion=v4\n", "lightgbm"),
    ],
)
def test_each_format_is_recognised(tmp_path: Path, name: str, content: bytes, framework: str) -> None:
    file = touch(tmp_path / "model" / name, content)
    touch(tmp_path / "model" / "README.md", b"# notes")
    assert find_model(tmp_path) == ModelSource(framework, file)


def test_files_that_only_look_like_models_are_not_taken_for_one(tmp_path: Path) -> None:
    touch(tmp_path / "config.json", b'{"labels": ["a", "b"]}')
    touch(tmp_path / "model.txt", b"a vocabulary, not a LightGBM model")
    touch(tmp_path / ".hidden" / "model.joblib")
    with pytest.raises(ModelLoadError, match=r"^No model found in .*: expected model\.joblib, .* Give --entry_script"):
        find_model(tmp_path)


def test_a_saved_model_folder_is_one_model_with_its_variables(tmp_path: Path) -> None:
    touch(tmp_path / "export" / "saved_model.pb")
    touch(tmp_path / "export" / "variables" / "variables.index")
    touch(tmp_path / "export" / "assets" / "vocab.pkl")  # part of the SavedModel, not a second model
    assert find_model(tmp_path) == ModelSource("tensorflow", tmp_path / "export")


def test_several_models_need_a_framework_or_one_of_them(tmp_path: Path) -> None:
    touch(tmp_path / "a.joblib")
    touch(tmp_path / "sub" / "b.onnx")
    with pytest.raises(ModelLoadError) as refused:
        find_model(tmp_path)
    assert str(refused.value) == (
        f"Found 2 models in {tmp_path}: a.joblib (sklearn), sub/b.onnx (onnx); keep one, or set --model_framework "
        "(AZUREML_MODEL_FRAMEWORK)"
    )
    assert find_model(tmp_path, "onnx") == ModelSource("onnx", tmp_path / "sub" / "b.onnx")
    with pytest.raises(ModelLoadError, match="No model found in .*: expected a tensorflow model"):
        find_model(tmp_path, "tensorflow")
    touch(tmp_path / "c.pkl")
    with pytest.raises(ModelLoadError, match=r"Found 2 models .*; keep one in the folder$"):
        find_model(tmp_path, "sklearn")


def test_the_search_stops_three_levels_down(tmp_path: Path) -> None:
    touch(tmp_path / "a" / "b" / "c" / "model.onnx")
    with pytest.raises(ModelLoadError, match="No model found"):
        find_model(tmp_path)
    assert find_model(tmp_path / "a").framework == "onnx"


def test_a_missing_folder_is_named(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match=f"The model folder {tmp_path / 'nope'} does not exist"):
        find_model(tmp_path / "nope")


def test_the_multi_model_layout(tmp_path: Path) -> None:
    touch(tmp_path / "repo" / "iris" / "1" / "model.joblib")
    touch(tmp_path / "repo" / "iris" / "2" / "model.joblib")
    touch(tmp_path / "repo" / "net" / "7" / "model.onnx")
    touch(tmp_path / "repo" / ".cache" / "x")
    assert is_multi_model(tmp_path / "repo")
    touch(tmp_path / "single" / "model" / "model.joblib")  # a version folder must hold folders only
    assert not is_multi_model(tmp_path / "single")
    touch(tmp_path / "files" / "model.joblib")
    assert not is_multi_model(tmp_path / "files")
    (tmp_path / "empty" / "iris").mkdir(parents=True)
    assert not is_multi_model(tmp_path / "empty")
    assert not is_multi_model(tmp_path / "missing")


def test_each_framework_has_a_backend() -> None:
    for framework in ("sklearn", "onnx", "xgboost", "lightgbm"):
        assert callable(formats.backend(framework))


def test_a_model_linked_from_outside_the_folder_is_refused(tmp_path: Path) -> None:
    outside = touch(tmp_path / "elsewhere" / "model.joblib")
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "model.joblib").symlink_to(outside)
    with pytest.raises(ModelRefused, match="outside the model folder .*: models load only from the configured folder"):
        find_model(tmp_path / "model")
    real = touch(tmp_path / "linked" / "real" / "model.bin")
    (tmp_path / "linked" / "model.onnx").symlink_to(real)  # a link within the folder is fine, and followed
    assert find_model(tmp_path / "linked") == ModelSource("onnx", real)
