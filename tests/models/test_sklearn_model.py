"""scikit-learn models served without a script: /score's methods, headers and inputs, the signature read from the
estimator, V2 inference, and loading through the trust layer."""

from __future__ import annotations

import json
import pickle
import sys
import types
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.base import ClassifierMixin  # type: ignore[import-untyped]
from sklearn.compose import make_column_transformer  # type: ignore[import-untyped]
from sklearn.datasets import load_iris  # type: ignore[import-untyped]
from sklearn.dummy import DummyClassifier  # type: ignore[import-untyped]
from sklearn.ensemble import IsolationForest  # type: ignore[import-untyped]
from sklearn.linear_model import LinearRegression, LogisticRegression  # type: ignore[import-untyped]
from sklearn.pipeline import make_pipeline  # type: ignore[import-untyped]
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler  # type: ignore[import-untyped]
from sklearn.svm import SVC  # type: ignore[import-untyped]
from sklearn.tree import DecisionTreeClassifier  # type: ignore[import-untyped]

from scoring_runtime.errors import BadRequest, ModelLoadError
from scoring_runtime.models.base import Loaded, LoadOptions
from scoring_runtime.models.sklearn_model import SklearnModel, load_sklearn

X, Y = load_iris(return_X_y=True)
SPECIES = np.array(["setosa", "versicolor", "virginica"])[Y]
ROW = [5.1, 3.5, 1.4, 0.2]
ALL = ["predict", "predict_proba", "predict_log_proba", "decision_function"]


def served(estimator: Any, warnings: list[str] | None = None) -> SklearnModel:
    return SklearnModel(estimator, "m", "1", Loaded(Path("/models/m.pkl"), warnings or []))


def refused(model: SklearnModel, body: Any) -> str:
    with pytest.raises(BadRequest) as raised:
        model.score(body)
    return raised.value.message


@pytest.fixture(scope="module")
def iris() -> SklearnModel:
    return served(LogisticRegression(max_iter=1000).fit(X, Y))


@pytest.fixture(scope="module")
def regressor() -> SklearnModel:
    return served(LinearRegression().fit(X[:, :3], X[:, 3]))


@pytest.fixture(scope="module")
def frame_model() -> SklearnModel:
    """A DataFrame-fitted pipeline with a string column one-hot encoded and a numeric one scaled."""
    frame = pd.DataFrame({"color": ["red", "blue", "green", "red", "blue", "green"], "size": [1.0, 2, 3, 4, 5, 6]})
    encode = make_column_transformer((OneHotEncoder(), ["color"]), remainder=StandardScaler())
    return served(make_pipeline(encode, LogisticRegression()).fit(frame, ["s", "l", "l", "s", "l", "s"]))


def test_a_classifier_answers_probabilities_by_default_and_names_method_and_classes(iris: SklearnModel) -> None:
    scored = iris.score({"data": [ROW, X[100].tolist()]})
    assert np.allclose(scored.value, iris.estimator.predict_proba([ROW, X[100]]))  # type: ignore[attr-defined]
    assert dict(scored.headers) == {"x-ms-model-method": "predict_proba", "x-ms-model-classes": "[0,1,2]"}
    labels = iris.score({"data": [ROW, X[100].tolist()], "method": "predict"})
    assert labels.value == [0, 2] and dict(labels.headers) == {"x-ms-model-method": "predict"}
    decision = iris.score({"data": [ROW], "method": "decision_function"})
    assert len(decision.value[0]) == 3 and dict(decision.headers)["x-ms-model-classes"] == "[0,1,2]"


def test_with_classes_labels_the_answer(iris: SklearnModel) -> None:
    scored = iris.score({"data": [ROW], "with_classes": True})
    assert set(scored.value) == {"method", "classes", "predictions"}
    assert scored.value["method"] == "predict_proba" and scored.value["classes"] == [0, 1, 2]
    assert len(scored.value["predictions"][0]) == 3
    assert json.dumps(scored.value)  # plain Python values throughout


def test_a_regressor_predicts_by_default_and_refuses_probabilities(regressor: SklearnModel) -> None:
    scored = regressor.score({"data": [ROW[:3]]})
    assert scored.headers == (("x-ms-model-method", "predict"),)
    assert scored.value == pytest.approx(regressor.estimator.predict([ROW[:3]]).tolist())  # type: ignore[attr-defined]
    message = refused(regressor, {"data": [ROW[:3]], "method": "predict_proba"})
    assert "'predict_proba' is not available for this LinearRegression" in message and "allowed: predict" in message
    assert "fit" in refused(regressor, {"data": [ROW[:3]], "method": "fit"})
    assert "allowed" in refused(regressor, {"data": [ROW[:3]], "method": ["predict"]})


def test_an_svc_without_probability_offers_decision_function_not_predict_proba() -> None:
    model = served(SVC().fit(X, Y))
    assert model.facts.methods == ("predict", "decision_function")
    assert model.score({"data": [ROW]}).headers == (("x-ms-model-method", "predict"),)
    assert dict(model.score({"data": [ROW], "method": "decision_function"}).headers)["x-ms-model-classes"]
    assert "allowed: predict, decision_function" in refused(model, {"data": [ROW], "method": "predict_proba"})


def test_a_pipeline_answers_as_its_final_step() -> None:
    pipeline = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, Y)
    model = served(pipeline)
    assert model.facts.methods == tuple(ALL)
    assert np.allclose(model.score({"data": [ROW]}).value, pipeline.predict_proba([ROW]))
    assert model.signature.output("predict_proba") is not None


def test_string_labels_stay_strings_in_score_and_are_bytes_in_infer() -> None:
    model = served(LogisticRegression(max_iter=1000).fit(X, SPECIES))
    assert model.score({"data": [ROW], "method": "predict"}).value == ["setosa"]
    scored = model.score({"data": [ROW], "with_classes": True})
    assert json.loads(dict(scored.headers)["x-ms-model-classes"]) == ["setosa", "versicolor", "virginica"]
    assert scored.value["classes"] == ["setosa", "versicolor", "virginica"]
    predict = model.infer({"input": np.array([ROW])}, None)["predict"]
    assert predict.dtype == object and predict.tolist() == [b"setosa"]
    spec = model.signature.output("predict")
    assert spec is not None and spec.datatype == "BYTES"


def test_a_dataframe_model_takes_records_and_rows(frame_model: SklearnModel) -> None:
    expected = frame_model.estimator.predict_proba(  # type: ignore[attr-defined]
        pd.DataFrame({"color": ["red", "green"], "size": [2.0, 5.0]})
    ).tolist()
    records = frame_model.score({"data": [{"size": 2, "color": "red"}, {"color": "green", "size": 5.0}]})
    rows = frame_model.score({"data": [["red", 2], ["green", 5.0]]})
    assert np.allclose(records.value, expected) and np.allclose(rows.value, expected)
    assert dict(rows.headers)["x-ms-model-classes"] == '["l","s"]'


def test_records_are_checked_against_the_columns(frame_model: SklearnModel, iris: SklearnModel) -> None:
    assert "record 1 lacks 'size'" in refused(frame_model, {"data": [{"color": "red", "size": 1}, {"color": "red"}]})
    extra = refused(frame_model, {"data": [{"color": "red", "size": 1, "weight": 3}]})
    assert "record 0 has unknown 'weight'" in extra and "'color', 'size'" in extra
    assert "rows and records cannot be mixed" in refused(frame_model, {"data": [{"color": "red", "size": 1}, [1, 2]]})
    assert "rows and records cannot be mixed" in refused(frame_model, {"data": [["red", 1], {"color": "red"}]})
    assert "fitted without column names" in refused(iris, {"data": [{"a": 1}]})
    assert "not a single value" in refused(frame_model, {"data": [["red", [1]]]})


def test_a_numeric_dataframe_model_gets_a_frame_with_its_column_names() -> None:
    frame = pd.DataFrame(X, columns=["sl", "sw", "pl", "pw"])
    model = served(LogisticRegression(max_iter=1000).fit(frame, Y))
    # Warnings are errors here: a bare array would make scikit-learn warn that the feature names are missing.
    assert model.score({"data": [{"sl": 5.1, "sw": 3.5, "pl": 1.4, "pw": 0.2}], "method": "predict"}).value == [0]
    assert model.score({"data": [ROW], "method": "predict"}).value == [0]
    message = refused(model, {"data": [[5.1, "wide", 1.4, 0.2]]})
    assert "row 0, column 1 ('sw'): 'wide' is not a number" in message
    (spec,) = model.signature.inputs
    assert (spec.name, spec.datatype, spec.shape) == ("input", "FP64", (-1, 4))
    assert spec.parameters == {"feature_names": ["sl", "sw", "pl", "pw"]}
    assert model.example() == {"data": [{"sl": 0.0, "sw": 0.0, "pl": 0.0, "pw": 0.0}]}


def test_a_transformer_transforms_by_default_and_sparse_output_becomes_lists() -> None:
    scaler = StandardScaler().fit(X)
    model = served(scaler)
    scored = model.score({"data": [ROW]})
    assert scored.headers == (("x-ms-model-method", "transform"),)
    assert np.allclose(scored.value, scaler.transform([ROW]))
    transform = model.signature.output("transform")
    assert transform is not None and transform.shape == (-1, 4)
    assert model.infer({"input": np.array([ROW])}, None)["transform"].shape == (1, 4)
    encoder = served(OneHotEncoder().fit([["a"], ["b"]]))
    assert encoder.score({"data": [["b"], ["a"]]}).value == [[0.0, 1.0], [1.0, 0.0]]


def test_an_array_fitted_model_with_an_encoded_column_takes_strings_in_rows_and_one_bytes_tensor() -> None:
    table = np.array([["red", 1.0, 0], ["blue", 2.0, 0], ["red", 3.0, 0], ["green", 4.0, 0]], dtype=object)
    # Selections by boolean mask and by slice; the third column is dropped, the second passed through.
    selections = [(OneHotEncoder(), [True, False, False]), ("drop", slice(2, 3))]
    pipeline = make_pipeline(make_column_transformer(*selections, remainder="passthrough"), LinearRegression())
    pipeline.fit(table, [1.0, 2.0, 3.0, 4.0])
    model = served(pipeline)
    (spec,) = model.signature.inputs
    assert (spec.name, spec.datatype, spec.shape) == ("input", "BYTES", (-1, 3))
    assert spec.parameters == {"string_columns": [0]}
    expected = pipeline.predict(np.array([["green", 2.5, 7]], dtype=object)).tolist()
    assert model.score({"data": [["green", 2.5, 7]]}).value == pytest.approx(expected)
    tensor = np.array([[b"green", b"2.5", b"7"]], dtype=object)
    assert model.infer({"input": tensor}, None)["predict"].tolist() == pytest.approx(expected)
    with pytest.raises(BadRequest, match=r"input 'input', column 1 must hold numbers, and b'wide' is not one"):
        model.infer({"input": np.array([[b"green", b"wide", b"7"]], dtype=object)}, None)
    assert model.describe()["string_features"] == [0]
    encoder = served(OneHotEncoder().fit([["a"], ["b"]]))
    assert encoder.infer({"input": np.array([[b"b"]], dtype=object)}, None)["transform"].tolist() == [[0.0, 1.0]]


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ([[1, 2, 3, 4]], "must be a JSON object"),
        ({"data": [ROW], "methd": "predict"}, "Unknown keys in the body: methd"),
        ({"method": "predict"}, 'has no "data"'),
        ({"data": "1,2,3,4"}, '"data" must be a list of rows'),
        ({"data": {"a": [1]}}, "got an object"),
        ({"data": []}, '"data" is empty'),
        ({"data": ROW}, "a single flat list of 4: send one row as [[1.0, 2.0, ...]], a list holding one list of 4"),
        ({"data": [ROW, [1.0, 2.0, 3.0]]}, "row 1 has 3 values, expected 4"),
        ({"data": [[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]]}, "expected 4 features per row, got 3"),
        ({"data": ["abc"]}, "must be a list of rows, each a list of feature values, and this is a single flat list"),
        ({"data": [ROW, "abc"]}, "row 1 is a string, not a list of feature values"),
        ({"data": [ROW, 5]}, "row 1 is a number"),
        ({"data": [None, ROW]}, "row 0 is null"),
        ({"data": [ROW, True]}, "row 1 is a boolean"),
        ({"data": [[1.0, [2.0], 3.0, 4.0]]}, "row 0, column 1: [2.0] is not a number"),
        ({"data": [ROW, [1.0, 2.0, "x", 4.0]]}, "row 1, column 2: 'x' is not a number"),
        ({"data": [[1.0, 2.0, {"v": 3}, 4.0]]}, "row 0, column 2: {'v': 3} is not a number"),
        ({"data": [ROW], "with_classes": "yes"}, '"with_classes" must be true or false'),
        ({"data": [[float("nan"), 1.0, 1.0, 1.0]]}, "LogisticRegression.predict_proba cannot take this input"),
    ],
)
def test_bad_input_is_a_bad_request_that_names_the_problem(iris: SklearnModel, body: Any, named: str) -> None:
    assert named in refused(iris, body)


def test_a_single_feature_model_still_wants_rows() -> None:
    model = served(LinearRegression().fit(X[:, :1], X[:, 1]))
    assert "takes one feature: send one list per value, e.g. [[1.0], [2.0], [3.0]]" in refused(model, {"data": [1.0]})
    assert len(model.score({"data": [[1.0], [2.0]]}).value) == 2
    assert model.infer({"x": np.array([1.0, 2.0])}, None)["predict"].shape == (2,)


class Mixed:
    """An estimator-like object answering numpy scalars in an object array."""

    def predict(self, rows: Any) -> Any:
        return np.array([np.int64(1), "a", np.float32(0.5)], dtype=object)


def test_numpy_values_in_an_object_answer_become_plain_ones() -> None:
    value = served(Mixed()).score({"data": [[1.0]]}).value
    assert value == [1, "a", 0.5] and [type(v) for v in value] == [int, str, float]


def test_outputs_of_other_estimators_are_described() -> None:
    ovo = served(SVC(decision_function_shape="ovo").fit(X, Y)).signature.output("decision_function")
    assert ovo is not None and ovo.shape == (-1, 3)
    detector = served(IsolationForest(n_estimators=5, random_state=0).fit(X))
    outputs = {out.name: (out.datatype, out.shape) for out in detector.signature.outputs}
    assert outputs == {
        "predict": ("INT64", (-1,)),
        "decision_function": ("FP64", (-1,)),
        "score_samples": ("FP64", (-1,)),
    }
    assert detector.infer({"input": np.array([ROW])}, ["score_samples"])["score_samples"].dtype == np.float64
    unnamed = served(FunctionTransformer(np.log1p).fit(X)).signature.output("transform")
    assert unnamed is not None and unnamed.shape == (-1, -1)


def test_pandas_output_becomes_lists_and_arrays() -> None:
    model = served(StandardScaler().set_output(transform="pandas").fit(pd.DataFrame(X, columns=list("abcd"))))
    assert np.allclose(model.score({"data": [ROW]}).value, model.infer({"input": np.array([ROW])}, None)["transform"])


class Exploding:
    """An estimator-like object failing in a way that is no fault of the input."""

    def predict(self, rows: Any) -> Any:
        raise RuntimeError("disk on fire")


def test_errors_other_than_value_and_type_errors_are_the_servers() -> None:
    model = served(Exploding())
    with pytest.raises(RuntimeError, match="disk on fire"):
        model.score({"data": [[1, 2]]})
    assert model.example() is None and model.signature.inputs[0].shape == (-1, -1)


class Fits:
    """An estimator-like object with fit and predict that is no scikit-learn estimator: it has no tags."""

    def fit(self, rows: Any, targets: Any) -> Fits:
        return self

    def predict(self, rows: Any) -> Any:
        return np.zeros(len(rows))


class MixinOnly(ClassifierMixin):  # type: ignore[misc]
    """A classifier mixin without BaseEstimator: its __sklearn_tags__ calls a base that has none."""

    classes_ = np.array([0, 1])

    def fit(self, rows: Any, targets: Any) -> MixinOnly:
        return self

    def predict(self, rows: Any) -> Any:
        return np.zeros(len(rows), dtype=int)


def test_objects_without_scikit_learn_tags_load_without_warnings() -> None:
    # Warnings are errors here: reading the object must not go through scikit-learn's tag machinery, which warns
    # (1.7) or raises (1.9) for an object without tags.
    for estimator, kind in ((Fits(), "other"), (MixinOnly(), "classifier")):  # MixinOnly has classes_
        model = served(estimator)
        assert model.facts.kind == kind
        assert model.score({"data": [[1.0, 2.0]], "method": "predict"}).value == [0]
    # A class is no fitted estimator either (is_classifier of a class warns on 1.7).
    assert served(LogisticRegression).facts.kind == "other"


def test_the_signature_and_description_come_from_the_estimator(iris: SklearnModel) -> None:
    (spec,) = iris.signature.inputs
    assert (spec.name, spec.datatype, spec.shape, dict(spec.parameters)) == ("input", "FP64", (-1, 4), {})
    outputs = {out.name: (out.datatype, out.shape) for out in iris.signature.outputs}
    assert outputs == {
        "predict": ("INT64", (-1,)),
        "predict_proba": ("FP64", (-1, 3)),
        "predict_log_proba": ("FP64", (-1, 3)),
        "decision_function": ("FP64", (-1, 3)),
    }
    proba = iris.signature.output("predict_proba")
    assert proba is not None and proba.parameters == {"classes": [0, 1, 2]}
    assert iris.example() == {"data": [[0.0, 0.0, 0.0, 0.0]]}
    mismatch = "Trying to unpickle estimator LogisticRegression from version 1.5.0 when using version 1.9.1."
    description = served(iris.estimator, warnings=[mismatch]).describe()
    assert description == {
        "estimator": "LogisticRegression",
        "n_features_in": 4,
        "feature_names": None,
        "string_features": [],
        "classes": [0, 1, 2],
        "methods": ALL,
        "default_method": "predict_proba",
        "sklearn_version": "1.5.0",
        "warnings": [mismatch],
    }
    assert json.dumps(description)
    assert iris.describe()["sklearn_version"] is None
    stamped = pickle.loads(pickle.dumps(iris.estimator))
    stamped._sklearn_version = "1.4.2"  # as an estimator that kept it carries it
    assert served(stamped).describe()["sklearn_version"] == "1.4.2"


def test_binary_decision_function_is_one_column_and_a_regressor_has_no_classes(regressor: SklearnModel) -> None:
    binary = served(LogisticRegression().fit(X[:100], Y[:100]))
    decision = binary.signature.output("decision_function")
    assert decision is not None and decision.shape == (-1,)
    predict = regressor.signature.output("predict")
    assert predict is not None and (predict.datatype, predict.shape, dict(predict.parameters)) == ("FP64", (-1,), {})
    assert regressor.describe()["classes"] is None
    two_targets = served(LinearRegression().fit(X[:, :2], X[:, 2:]))
    spec = two_targets.signature.output("predict")
    assert spec is not None and spec.shape == (-1, 2)


def test_a_mixed_dataframe_model_lists_one_input_per_column(frame_model: SklearnModel) -> None:
    inputs = [(spec.name, spec.datatype, spec.shape) for spec in frame_model.signature.inputs]
    assert inputs == [("color", "BYTES", (-1,)), ("size", "FP64", (-1,))]
    description = frame_model.describe()
    assert description["feature_names"] == ["color", "size"] and description["string_features"] == ["color"]
    example = frame_model.example()
    assert example is not None and example["data"][0]["size"] == 0.0
    assert example["data"][0]["color"] in {"red", "green", "blue"}
    assert frame_model.score(example).value  # the example scores


def test_infer_takes_one_tensor_and_answers_predict_by_default(iris: SklearnModel) -> None:
    answer = iris.infer({"anything": np.array([ROW, X[100]], dtype=np.float32)}, None)
    assert list(answer) == ["predict"] and answer["predict"].tolist() == [0, 2]
    assert answer["predict"].dtype == np.int64
    chosen = iris.infer({"input": np.array([ROW])}, ["predict_proba", "predict", "predict_proba"])
    assert list(chosen) == ["predict_proba", "predict"] and chosen["predict_proba"].shape == (1, 3)


@pytest.mark.parametrize(
    ("inputs", "outputs", "named"),
    [
        ({"input": np.array(ROW)}, None, "must be 2-D [rows, features], got shape [4]; send one row as shape [1, 4]"),
        ({"input": np.zeros((2, 3))}, None, "expected 4 features per row, got 3"),
        ({"input": np.zeros((0, 4))}, None, "has no rows"),
        ({"input": np.zeros((1, 1, 4))}, None, "got shape [1, 1, 4]"),
        ({"a": np.zeros((1, 4)), "b": np.zeros((1, 4))}, None, "one input tensor of shape [rows, features]"),
        ({}, None, "no input tensors"),
        ({"input": np.array([[b"x", b"1", b"2", b"3"]], dtype=object)}, None, "must hold numbers, and b'x' is not"),
        ({"input": np.zeros((1, 4))}, ["predict", "transform"], "Unknown outputs 'transform'"),
        ({"input": np.full((1, 4), 1j)}, None, "must hold numbers, and 1j is not one"),
    ],
)
def test_infer_refuses_what_the_model_cannot_take(
    iris: SklearnModel, inputs: dict[str, Any], outputs: list[str] | None, named: str
) -> None:
    with pytest.raises(BadRequest) as raised:
        iris.infer(inputs, outputs)
    assert named in raised.value.message


def test_infer_takes_one_tensor_per_column_with_bytes_for_strings(frame_model: SklearnModel) -> None:
    expected = frame_model.estimator.predict(  # type: ignore[attr-defined]
        pd.DataFrame({"color": ["red", "blue"], "size": [2.0, 5.0]})
    )
    by_column = {"color": np.array([b"red", b"blue"], dtype=object), "size": np.array([[2], [5]], dtype=np.int32)}
    assert frame_model.infer(by_column, None)["predict"].tolist() == [s.encode() for s in expected]
    as_text = {"color": np.array(["red", "blue"]), "size": np.array([2.0, 5.0])}
    assert frame_model.infer(as_text, None)["predict"].tolist() == [s.encode() for s in expected]
    whole = np.array([[b"red", b"2"], [b"blue", b"5.0"]], dtype=object)
    assert frame_model.infer({"input": whole}, None)["predict"].tolist() == [s.encode() for s in expected]


@pytest.mark.parametrize(
    ("inputs", "named"),
    [
        ({"color": np.array([b"red"], dtype=object)}, "missing input tensors for 'size'"),
        (
            {"color": np.array([b"red"], dtype=object), "size": np.zeros(1), "age": np.zeros(1)},
            "unknown input tensors 'age'",
        ),
        ({"color": np.array([b"red"], dtype=object), "size": np.zeros(2)}, "input 'size' has 2 rows"),
        ({"color": np.array([b"red"], dtype=object), "size": np.zeros((1, 2))}, "shape [rows] or [rows, 1]"),
        ({"color": np.array([b"\xff"], dtype=object), "size": np.zeros(1)}, "not UTF-8"),
        ({"color": np.array([b"red"], dtype=object), "size": np.array([b"big"], dtype=object)}, "b'big' is not one"),
        ({"color": np.array([], dtype=object), "size": np.zeros(0)}, "no rows"),
    ],
)
def test_per_column_tensors_are_checked(frame_model: SklearnModel, inputs: dict[str, Any], named: str) -> None:
    with pytest.raises(BadRequest) as raised:
        frame_model.infer(inputs, None)
    assert named in raised.value.message


def test_a_multi_output_classifier_answers_a_block_per_output() -> None:
    targets = np.stack([Y, Y % 2], axis=1)
    model = served(DecisionTreeClassifier(max_depth=2, random_state=0).fit(X, targets))
    scored = model.score({"data": [ROW]})
    assert len(scored.value) == 2 and len(scored.value[0][0]) == 3 and len(scored.value[1][0]) == 2
    assert model.score({"data": [ROW], "method": "predict"}).value == [[0, 0]]
    with pytest.raises(BadRequest, match="blocks of different widths"):
        model.infer({"input": np.array([ROW])}, ["predict_proba"])
    assert model.infer({"input": np.array([ROW])}, None)["predict"].shape == (1, 2)


def test_a_long_list_of_classes_stays_out_of_the_headers() -> None:
    labels = [f"label-{i}" for i in range(600)]
    model = served(DummyClassifier().fit(np.zeros((600, 1)), labels))
    scored = model.score({"data": [[0.0]], "with_classes": True})
    assert scored.headers == (("x-ms-model-method", "predict_proba"),)
    assert scored.value["classes"] == sorted(labels)


def test_several_threads_score_the_same_model_alike(frame_model: SklearnModel) -> None:
    bodies = [{"data": [["red", float(i)], ["blue", float(-i)]]} for i in range(8)]
    alone = [frame_model.score(body).value for body in bodies]
    with ThreadPoolExecutor(max_workers=4) as pool:
        together = list(pool.map(lambda body: frame_model.score(body).value, bodies * 3))
    assert together == alone * 3


class NotAModel:
    pass


@pytest.fixture
def trust(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    """The trust layer's loaders replaced: they are tested with it; here what load_sklearn does with their answer."""
    module = types.ModuleType("scoring_runtime.models.trust")
    import scoring_runtime.models as package

    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setattr(package, "trust", module, raising=False)
    return module


def test_load_reads_skops_files_with_skops_and_others_as_pickles(trust: types.ModuleType) -> None:
    calls: list[tuple[str, Path, LoadOptions]] = []
    estimator = LinearRegression().fit(X[:, :3], X[:, 3])

    def loader(kind: str) -> Any:
        def load(path: Path, options: LoadOptions) -> tuple[Any, list[str]]:
            calls.append((kind, path, options))
            return estimator, [f"read by {kind}"]

        return load

    trust.load_skops = loader("skops")  # type: ignore[attr-defined]
    trust.load_pickle = loader("pickle")  # type: ignore[attr-defined]
    options = LoadOptions(trust_pickle=True)
    for file, kind in [("m.skops", "skops"), ("m.joblib", "pickle"), ("m.pkl", "pickle"), ("M.SKOPS", "skops")]:
        model = load_sklearn(Path(file), "m", "2", options)
        assert calls[-1] == (kind, Path(file), options)
        assert (model.name, model.version, model.framework) == ("m", "2", "sklearn")
        assert model.loaded.path == Path(file) and model.loaded.warnings == [f"read by {kind}"]


@pytest.mark.parametrize(
    ("found", "named"),
    [
        (NotAModel(), f"m.pkl holds a {__name__}.NotAModel, not a scikit-learn estimator"),
        ({"coef": [1.0]}, "m.pkl holds a builtins.dict, not a scikit-learn estimator: it has none of the methods"),
        (LogisticRegression(), "m.pkl holds a sklearn.linear_model._logistic.LogisticRegression that was never fitted"),
    ],
)
def test_load_refuses_what_is_no_fitted_estimator(trust: types.ModuleType, found: object, named: str) -> None:
    trust.load_pickle = lambda path, options: (found, [])  # type: ignore[attr-defined]
    with pytest.raises(ModelLoadError) as raised:
        load_sklearn(Path("/models/m.pkl"), "m", None, LoadOptions())
    assert named in str(raised.value)


def test_files_load_through_the_trust_layer(tmp_path: Path, frame_model: SklearnModel, iris: SklearnModel) -> None:
    joblib = pytest.importorskip("joblib")
    skops_io = pytest.importorskip("skops.io")
    joblib.dump(frame_model.estimator, tmp_path / "frame.joblib")
    skops_io.dump(iris.estimator, tmp_path / "iris.skops")
    body = {"data": [["red", 2.0]], "method": "predict"}
    from_joblib = load_sklearn(tmp_path / "frame.joblib", "frame", None, LoadOptions())  # the restricted unpickler
    assert from_joblib.score(body).value == frame_model.score(body).value
    from_skops = load_sklearn(tmp_path / "iris.skops", "iris", None, LoadOptions())
    assert from_skops.score({"data": [ROW]}).value == iris.score({"data": [ROW]}).value


def test_the_version_an_estimator_was_saved_with_comes_from_the_loads_warning(tmp_path: Path) -> None:
    import sklearn  # type: ignore[import-untyped]

    older = "9" * len(sklearn.__version__)  # the same length keeps the pickle's string header valid
    saved = pickle.dumps(LinearRegression().fit(X, Y)).replace(sklearn.__version__.encode(), older.encode())
    (tmp_path / "m.pkl").write_bytes(saved)
    model = load_sklearn(tmp_path / "m.pkl", "m", None, LoadOptions())
    assert model.describe()["sklearn_version"] == older
    assert any(older in warning for warning in model.loaded.warnings)
