"""XGBoost and LightGBM boosters served from their own model files."""

from __future__ import annotations

import hashlib
import json
import sys
import warnings
from pathlib import Path
from typing import Any

import lightgbm
import numpy as np
import pytest
import xgboost

from scoring_runtime.errors import BadRequest, ModelLoadError, ModelRefused
from scoring_runtime.models.base import Loaded, LoadOptions
from scoring_runtime.models.boosters import BoosterModel, load_lightgbm, load_xgboost
from scoring_runtime.models.tensors import TensorSpec

RNG = np.random.default_rng(7)
X = RNG.normal(size=(48, 3))
BINARY = (X[:, 0] + X[:, 1] > 0).astype(int)
CLASSES = np.digitize(X[:, 0], [-0.5, 0.5])
ROWS = X[:5]
LGB_PARAMS = {"verbose": -1, "min_data_in_leaf": 2, "min_data_in_bin": 1, "num_threads": 1}


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("boosters")
    with warnings.catch_warnings():
        # XGBoost warns that it saves a .bst file as UBJSON.
        warnings.simplefilter("ignore")
        return _train(folder)


def _train(folder: Path) -> dict[str, Path]:
    paths = {name: folder / name for name in ("binary.ubj", "softprob.json", "linear.bst", "multi.txt", "reg.txt")}
    named = xgboost.DMatrix(X, BINARY, feature_names=["a", "b", "c"])
    xgboost.train({"objective": "binary:logistic", "nthread": 1}, named, 4).save_model(paths["binary.ubj"])
    softprob = {"objective": "multi:softprob", "num_class": 3, "nthread": 1}
    xgboost.train(softprob, xgboost.DMatrix(X, CLASSES), 4).save_model(paths["softprob.json"])
    linear = {"booster": "gblinear", "nthread": 1}
    xgboost.train(linear, xgboost.DMatrix(X, X[:, 0]), 4).save_model(paths["linear.bst"])
    multiclass = lightgbm.Dataset(X, CLASSES, params=LGB_PARAMS)
    lightgbm.train({**LGB_PARAMS, "objective": "multiclass", "num_class": 3}, multiclass, 4).save_model(
        paths["multi.txt"]
    )
    regression = lightgbm.Dataset(X, X[:, 0], feature_name=["a", "b", "c"], params=LGB_PARAMS)
    lightgbm.train({**LGB_PARAMS, "objective": "regression"}, regression, 4).save_model(paths["reg.txt"])
    return paths


def load(files: dict[str, Path], name: str, **options: Any) -> BoosterModel:
    loader = load_lightgbm if name.endswith(".txt") else load_xgboost
    return loader(files[name], "m", "1", LoadOptions(**options))


def test_xgboost_binary_matches_the_library(files: dict[str, Path]) -> None:
    model = load(files, "binary.ubj")
    expected = xgboost.Booster(model_file=files["binary.ubj"]).predict(xgboost.DMatrix(ROWS, feature_names=list("abc")))
    scored = model.score({"data": ROWS.tolist(), "method": "predict"})
    np.testing.assert_allclose(scored.value, expected, rtol=1e-6)
    assert model.framework == "xgboost"
    assert model.signature.inputs == (TensorSpec("input", "FP32", (-1, 3)),)
    assert model.signature.inputs[0].parameters == {"feature_names": ["a", "b", "c"]}
    assert model.signature.outputs == (TensorSpec("predict", "FP32", (-1,)),)


def test_xgboost_softprob_has_a_column_per_class(files: dict[str, Path]) -> None:
    model = load(files, "softprob.json")
    expected = xgboost.Booster(model_file=files["softprob.json"]).predict(xgboost.DMatrix(ROWS))
    assert model.signature.outputs == (TensorSpec("predict", "FP32", (-1, 3)),)
    assert model.signature.inputs[0].parameters == {}
    np.testing.assert_allclose(model.score({"data": ROWS.tolist()}).value, expected, rtol=1e-6)
    answer = model.infer({"input": ROWS}, ["predict"])["predict"]
    assert answer.shape == (5, 3)
    np.testing.assert_allclose(answer, expected, rtol=1e-6)


# XGBoost 3.4 deprecates gblinear, in a warning its C code raises through a ctypes callback at each use.
@pytest.mark.filterwarnings("ignore:.*`booster=gblinear` is deprecated:UserWarning")
def test_xgboost_linear_booster_predicts_through_a_dmatrix(files: dict[str, Path]) -> None:
    model = load(files, "linear.bst")
    assert any("Unknown file format: `bst`" in warning for warning in model.loaded.warnings)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the .bst suffix, as below
        expected = xgboost.Booster(model_file=files["linear.bst"]).predict(xgboost.DMatrix(ROWS))
    np.testing.assert_allclose(model.score({"data": ROWS.tolist()}).value, expected, rtol=1e-6)
    assert model.describe()["booster"] == "gblinear"


def test_lightgbm_multiclass_matches_the_library(files: dict[str, Path]) -> None:
    model = load(files, "multi.txt")
    expected = lightgbm.Booster(model_file=files["multi.txt"]).predict(ROWS)
    assert model.framework == "lightgbm"
    # Names LightGBM made up (Column_0, ...) are not published.
    assert model.signature.inputs[0] == TensorSpec("input", "FP64", (-1, 3))
    assert model.signature.inputs[0].parameters == {}
    assert model.signature.outputs == (TensorSpec("predict", "FP64", (-1, 3)),)
    np.testing.assert_allclose(model.score({"data": ROWS.tolist()}).value, expected)
    np.testing.assert_allclose(model.infer({"input": ROWS.astype(np.float32)}, None)["predict"], expected, rtol=1e-6)


def test_lightgbm_regression_with_feature_names(files: dict[str, Path]) -> None:
    model = load(files, "reg.txt")
    expected = lightgbm.Booster(model_file=files["reg.txt"]).predict(ROWS)
    assert model.signature.inputs[0].parameters == {"feature_names": ["a", "b", "c"]}
    assert model.signature.outputs == (TensorSpec("predict", "FP64", (-1,)),)
    np.testing.assert_allclose(model.score({"data": ROWS.tolist()}).value, expected)


@pytest.mark.parametrize("name", ["binary.ubj", "multi.txt"])
def test_nulls_are_missing_values(files: dict[str, Path], name: str) -> None:
    model = load(files, name)
    with_nan = np.array([[np.nan, 0.5, -1.0]])
    expected = model.infer({"input": with_nan}, None)["predict"]
    np.testing.assert_allclose(model.score({"data": [[None, 0.5, -1]]}).value, expected)


@pytest.mark.parametrize("name", ["softprob.json", "multi.txt"])
def test_no_rows_answer_an_empty_list_and_an_empty_tensor(files: dict[str, Path], name: str) -> None:
    model = load(files, name)
    assert model.score({"data": []}).value == []
    assert model.infer({"input": np.empty((0, 3))}, None)["predict"].shape == (0, 3)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([[1, 2, 3]], 'must be a JSON object {"data"'),
        ({"rows": [[1, 2, 3]]}, 'must be a JSON object {"data"'),
        ({"data": [[1, 2, 3]], "extra": 1}, "Unknown keys 'extra'"),
        ({"data": [[1, 2, 3]], "method": "predict_proba"}, 'Unknown method "predict_proba"'),
        ({"data": [1, 2, 3]}, "Row 0 is not a list of feature values"),
        ({"data": {"a": 1}}, '"data" must be a list of rows'),
        ({"data": [[1, 2, 3], [1, 2]]}, "Row 1 has 2 values; the model takes 3 features"),
        ({"data": [[1, 2, 3, 4], [1, 2, 3, 4]]}, "Row 0 has 4 values; the model takes 3 features"),
        ({"data": [[1, 2, 3], [1, "2.5", 3]]}, 'Row 1 holds "2.5", not a number or null'),
        ({"data": [[1, 2, 3], [None, {"x": 1}, 3]]}, 'Row 1 holds {"x": 1}, not a number or null'),
        ({"data": [[1, 2, 1e300]]}, "Feature values too large for FP32"),
        ({"data": [[1, 2, 10**400]]}, "Feature values too large for FP32"),
    ],
)
def test_bad_score_bodies_are_bad_requests(files: dict[str, Path], body: Any, message: str) -> None:
    with pytest.raises(BadRequest) as raised:
        load(files, "binary.ubj").score(body)
    assert message in raised.value.message


@pytest.mark.parametrize(
    ("inputs", "outputs", "message"),
    [
        ({"x": np.ones((1, 3))}, None, "The model takes one input, 'input'; got 'x'"),
        ({}, None, "got none"),
        ({"input": np.ones((1, 3))}, ["proba"], "Unknown outputs: 'proba'. The model has 'predict'"),
        ({"input": np.array([[b"1", b"2", b"3"]], dtype=object)}, None, "sent as BYTES; the model takes FP64"),
        ({"input": np.ones(3)}, None, "Input 'input' has shape [3]; the model takes [-1, 3]"),
        ({"input": np.ones((2, 4))}, None, "has shape [2, 4]"),
    ],
)
def test_bad_infer_requests(files: dict[str, Path], inputs: dict[str, Any], outputs: Any, message: str) -> None:
    with pytest.raises(BadRequest) as raised:
        load(files, "reg.txt").infer(inputs, outputs)
    assert message in raised.value.message


def test_infer_casts_integers(files: dict[str, Path]) -> None:
    model = load(files, "binary.ubj")
    integers = np.array([[1, 0, -1]], dtype=np.int64)
    np.testing.assert_allclose(
        model.infer({"input": integers}, None)["predict"], model.score({"data": [[1, 0, -1]]}).value
    )


def test_example_and_describe(files: dict[str, Path]) -> None:
    model = load(files, "softprob.json")
    example = model.example()
    assert example == {"data": [[0.0, 0.0, 0.0]]}
    assert len(model.score(example).value) == 1
    description = json.loads(json.dumps(model.describe()))
    assert description["objective"] == "multi:softprob"
    assert description["booster"] == "gbtree"
    assert description["boosted_rounds"] == 4
    assert description["num_features"] == 3
    assert description["outputs"] == [{"name": "predict", "datatype": "FP32", "shape": [-1, 3]}]
    lgb = json.loads(json.dumps(load(files, "multi.txt").describe()))
    assert (lgb["objective"], lgb["iterations"], lgb["trees"]) == ("multiclass", 4, 12)


@pytest.mark.parametrize("name", ["binary.ubj", "reg.txt"])
def test_load_checks_the_pinned_digest(files: dict[str, Path], name: str) -> None:
    load(files, name, sha256=hashlib.sha256(files[name].read_bytes()).hexdigest())
    with pytest.raises(ModelRefused):
        load(files, name, sha256="ab" * 32)


@pytest.mark.parametrize(
    ("loader", "file", "message"),
    [
        (load_xgboost, "model.json", r"model\.json is not an XGBoost model XGBoost can load: "),
        (load_xgboost, "model.ubj", r"model\.ubj is not an XGBoost model XGBoost can load: "),
        (load_lightgbm, "model.txt", r"model\.txt is not a LightGBM model LightGBM can load: "),
    ],
)
def test_unreadable_files_are_load_errors(tmp_path: Path, loader: Any, file: str, message: str) -> None:
    path = tmp_path / file
    path.write_text("tree\nnot a model\n")
    with pytest.raises(ModelLoadError, match=message) as raised:
        loader(path, "m", None, LoadOptions())
    assert "Stack trace" not in str(raised.value)


@pytest.mark.parametrize(("module", "name"), [("xgboost", "binary.ubj"), ("lightgbm", "reg.txt")])
def test_missing_library_names_the_extra(
    files: dict[str, Path], monkeypatch: pytest.MonkeyPatch, module: str, name: str
) -> None:
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(ModelLoadError, match=rf"pip install 'scoring-runtime\[{module}\]'"):
        load(files, name)


def test_a_booster_that_cannot_predict_is_a_load_error(tmp_path: Path) -> None:
    def broken(rows: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        raise ValueError("no predictor\nStack trace: ...")

    with pytest.raises(ModelLoadError, match="cannot predict one row of zeros: no predictor$"):
        BoosterModel("xgboost", "m", None, Loaded(tmp_path), broken, (3, None), np.dtype(np.float32), None, {})
