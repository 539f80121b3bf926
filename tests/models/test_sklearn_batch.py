"""Several /score bodies or V2 inferences for one scikit-learn model scored in fewer calls: each answer is the one
the request would have had alone (up to floating-point rounding), and each failure stays its own request's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_iris  # type: ignore[import-untyped]
from sklearn.linear_model import LinearRegression, LogisticRegression  # type: ignore[import-untyped]
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler  # type: ignore[import-untyped]
from sklearn.tree import DecisionTreeClassifier  # type: ignore[import-untyped]

from scoring_runtime.errors import BadRequest
from scoring_runtime.models.base import Loaded, batched
from scoring_runtime.models.sklearn_batch import compatible, split, stack
from scoring_runtime.models.sklearn_model import SklearnModel
from tests.models.test_sklearn_model import frame_model

X, Y = load_iris(return_X_y=True)
ROW = [5.1, 3.5, 1.4, 0.2]
OTHER = [6.7, 3.0, 5.2, 2.3]
__all__ = ["frame_model"]  # a fixture, used by name


class CountingClassifier(LogisticRegression):  # type: ignore[misc]
    """Counts the calls of its prediction methods, and the rows they were given."""

    calls: list[tuple[str, int]]

    def predict(self, features: Any) -> Any:
        self.calls.append(("predict", len(features)))
        return super().predict(features)

    def predict_proba(self, features: Any) -> Any:
        self.calls.append(("predict_proba", len(features)))
        return super().predict_proba(features)


def served(estimator: Any) -> SklearnModel:
    return SklearnModel(estimator, "m", "1", Loaded(Path("/models/m.pkl"), []))


def alone(model: SklearnModel, body: Any) -> Any:
    try:
        return model.score(body)
    except Exception as error:
        return error


def assert_same(together: Any, by_itself: Any) -> None:
    if isinstance(by_itself, Exception):
        assert type(together) is type(by_itself) and str(together) == str(by_itself)
        return
    assert together.headers == by_itself.headers
    assert_close(together.value, by_itself.value)


def assert_close(left: Any, right: Any) -> None:
    """Equal, numbers up to rounding, however nested (blocks of different widths, strings, records)."""
    if isinstance(right, dict):
        assert isinstance(left, dict) and left.keys() == right.keys()
        for key in right:
            assert_close(left[key], right[key])
        return
    try:
        numbers = np.asarray(right, dtype=np.float64)
    except (ValueError, TypeError):
        if not isinstance(right, list):
            assert left == right
            return
        assert isinstance(left, list) and len(left) == len(right)
        for a, b in zip(left, right, strict=True):
            assert_close(a, b)
        return
    assert np.allclose(np.asarray(left, dtype=np.float64), numbers, rtol=1e-12, atol=1e-15)


def test_bodies_score_in_one_call_per_method_and_each_answer_is_its_own() -> None:
    estimator = CountingClassifier(max_iter=1000).fit(X, Y)
    estimator.calls = []
    model = served(estimator)
    bodies: list[Any] = [
        {"data": [ROW]},
        {"data": [OTHER, ROW], "method": "predict"},
        {"data": [[1.0, 2.0]]},  # two features: this request's 400 alone
        {"data": [OTHER], "with_classes": True},
        "not an object",
        {"data": [ROW, OTHER, ROW]},
        {"data": [ROW], "method": "fit"},
        {"data": [[5, 3, 1, 0]]},  # integers: converted to floats as alone
    ]
    expected = [alone(model, body) for body in bodies]
    estimator.calls = []
    together = model.score_many(bodies)
    for outcome, by_itself in zip(together, expected, strict=True):
        assert_same(outcome, by_itself)
    assert sorted(estimator.calls) == [("predict", 2), ("predict_proba", 6)]
    assert batched(model) is model


def test_a_body_the_estimator_refuses_is_answered_alone_and_the_others_still_together() -> None:
    model = served(LogisticRegression(max_iter=1000).fit(X, Y))
    bodies = [{"data": [ROW]}, {"data": [[np.nan, 1.0, 2.0, 3.0]]}, {"data": [OTHER]}]
    bodies[1] = {"data": [[float("nan"), 1.0, 2.0, 3.0]]}
    outcomes = model.score_many(bodies)
    assert isinstance(outcomes[1], BadRequest) and "NaN" in str(outcomes[1])
    assert_same(outcomes[0], model.score(bodies[0]))
    assert_same(outcomes[2], model.score(bodies[2]))


@pytest.mark.parametrize(
    "estimator, bodies",
    [
        (StandardScaler().fit(X), [{"data": [ROW]}, {"data": [OTHER, ROW]}]),
        (OneHotEncoder().fit([["a"], ["b"]]), [{"data": [["b"], ["a"]]}, {"data": [["a"]]}, {"data": [["z"]]}]),
        (
            StandardScaler().set_output(transform="pandas").fit(pd.DataFrame(X, columns=list("abcd"))),
            [{"data": [ROW]}, {"data": [{"a": 1, "b": 2, "c": 3, "d": 4}, OTHER]}, {"data": [OTHER]}],
        ),
        (
            DecisionTreeClassifier(max_depth=2, random_state=0).fit(X, np.stack([Y, Y % 2], axis=1)),
            [{"data": [ROW]}, {"data": [OTHER, ROW]}, {"data": [ROW], "method": "predict"}],
        ),
        (LinearRegression().fit(X[:, :3], X[:, 3]), [{"data": [ROW[:3]]}, {"data": [OTHER[:3], ROW[:3]]}]),
        # Not row by row: its result has one row whatever it is given, so each body is answered alone.
        (FunctionTransformer(lambda rows: np.sum(rows, axis=0, keepdims=True)), [{"data": [ROW]}, {"data": [OTHER]}]),
    ],
    ids=["scaler", "sparse-one-hot", "pandas-output", "multi-output", "regressor", "not-row-wise"],
)
def test_every_kind_of_result_is_cut_back_into_each_bodys_rows(estimator: Any, bodies: list[Any]) -> None:
    model = served(estimator)
    for outcome, body in zip(model.score_many(bodies), bodies, strict=True):
        assert_same(outcome, alone(model, body))


def test_a_dataframe_model_stacks_records_and_rows_of_the_same_columns(frame_model: SklearnModel) -> None:
    bodies: list[Any] = [
        {"data": [{"color": "red", "size": 2.0}]},
        {"data": [["blue", 5.0], ["green", 1.0]]},
        {"data": [{"color": "red"}]},  # a missing column: its own 400
        {"data": [["red", 2]]},
    ]
    for outcome, body in zip(frame_model.score_many(bodies), bodies, strict=True):
        assert_same(outcome, alone(frame_model, body))


def test_inferences_are_stacked_per_output_set_and_refusals_stay_their_own() -> None:
    estimator = CountingClassifier(max_iter=1000).fit(X, Y)
    estimator.calls = []
    model = served(estimator)
    inferences: list[Any] = [
        ({"input": np.array([ROW])}, None),
        ({"input": np.array([OTHER, ROW])}, ["predict", "predict_proba"]),
        ({"input": np.array([ROW])}, ["fit"]),
        ({"input": np.array([ROW[:2]])}, None),
        ({"input": np.array([OTHER], dtype=np.float32)}, None),  # converted to float64 as alone
        ({"input": np.array([ROW])}, ["predict_proba", "predict"]),
    ]
    expected: list[Any] = []
    for inputs, outputs in inferences:
        try:
            expected.append(model.infer(inputs, outputs))
        except Exception as error:
            expected.append(error)
    estimator.calls = []
    together = model.infer_many(inferences)
    for outcome, by_itself in zip(together, expected, strict=True):
        if isinstance(by_itself, Exception):
            assert type(outcome) is type(by_itself) and str(outcome) == str(by_itself)
        else:
            assert isinstance(outcome, dict) and list(outcome) == list(by_itself)
            for name, tensor in by_itself.items():
                assert outcome[name].dtype == tensor.dtype and np.allclose(outcome[name], tensor)
    # One call for the default (predict) group, one per method for [predict, predict_proba] and its reverse.
    assert sorted(estimator.calls) == [("predict", 2), ("predict", 3), ("predict_proba", 3)]


def test_an_output_with_no_tensor_form_fails_each_inference_that_asks_for_it() -> None:
    model = served(DecisionTreeClassifier(max_depth=2, random_state=0).fit(X, np.stack([Y, Y % 2], axis=1)))
    inferences: list[Any] = [
        ({"input": np.array([ROW])}, ["predict_proba"]),
        ({"input": np.array([OTHER])}, ["predict_proba", "predict"]),
        ({"input": np.array([OTHER])}, ["predict"]),
    ]
    first, second, third = model.infer_many(inferences)
    assert isinstance(first, BadRequest) and "blocks of different widths" in str(first)
    assert isinstance(second, BadRequest)
    assert isinstance(third, dict) and third["predict"].shape == (1, 2)


def test_only_inputs_of_the_same_kind_dtype_and_columns_stack() -> None:
    floats, ints = np.ones((2, 3)), np.ones((1, 3), dtype=np.int64)
    assert compatible(floats) == compatible(np.zeros((5, 3))) != compatible(ints)
    assert compatible(floats) != compatible(np.ones((2, 4)))
    frame = pd.DataFrame({"a": [1.0], "b": ["x"]})
    assert compatible(frame) == compatible(pd.DataFrame({"a": [2.0, 3.0], "b": ["y", "z"]}))
    assert compatible(frame) != compatible(pd.DataFrame({"a": [1], "b": ["x"]}))
    assert compatible([1, 2]) != compatible([1, 2])  # anything else is never stacked
    stacked = stack([frame, frame])
    assert list(stacked.index) == [0, 1]
    assert stack([floats, np.zeros((1, 3))]).shape == (3, 3)
    assert split(np.arange(5), [2, 2]) is None  # one row too many: not row by row
    assert split(np.float64(1.0), [1]) is None
