"""What a fitted scikit-learn estimator tells about itself, read once at load: its prediction methods, features,
classes and outputs, and the Open Inference Protocol signature and example body built from them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from scoring_runtime.models.tensors import Signature, TensorSpec, datatype_of

# The methods a client may call, in the order the metadata lists them.
METHODS = ("predict", "predict_proba", "predict_log_proba", "decision_function", "transform", "score_samples")
# Outputs whose columns are the classes, in classes_ order.
CLASS_COLUMNS = frozenset({"predict_proba", "predict_log_proba", "decision_function"})


@dataclass(frozen=True)
class Facts:
    """An estimator's anatomy, as far as it can be read without calling it."""

    type_name: str
    methods: tuple[str, ...]
    n_features: int | None
    feature_names: tuple[str, ...] | None
    # JSON-able: a list of labels, or one list per output for a multi-output classifier; None for a non-classifier.
    classes: list[Any] | None
    classes_dtype: np.dtype[Any] | None
    kind: str  # classifier, regressor, clusterer, outlier_detector or other
    n_outputs: int  # targets predict answers per row (2-D answer when above 1)
    decision_shape: tuple[int, ...]
    n_transformed: int  # columns transform answers; -1 when not known
    # Features an encoder in front of the model learnt string categories for: index → one of those categories.
    text_features: Mapping[int, str]
    sklearn_version: str | None

    @property
    def default_method(self) -> str:
        """predict_proba where there is one (Azure ML's no-code default), else predict, else transform, else the
        first method the estimator has."""
        return next((m for m in ("predict_proba", "predict", "transform") if m in self.methods), self.methods[0])


def available_methods(estimator: object) -> tuple[str, ...]:
    # hasattr, not the class: SVC(probability=False) and Pipelines raise AttributeError for methods they lack.
    return tuple(method for method in METHODS if callable(getattr(estimator, method, None)))


def read_facts(estimator: object, methods: tuple[str, ...]) -> Facts:
    n_features = getattr(estimator, "n_features_in_", None)
    names = getattr(estimator, "feature_names_in_", None)
    feature_names = tuple(str(name) for name in names) if names is not None else None
    if feature_names is not None:
        n_features = len(feature_names)
    raw_classes = getattr(estimator, "classes_", None)
    classes, classes_dtype = _classes(raw_classes)
    final = _final_step(estimator)
    kind = _kind(estimator, classes is not None)
    indices = list(range(n_features)) if isinstance(n_features, int) else []
    version = getattr(estimator, "_sklearn_version", None)
    return Facts(
        type_name=type(estimator).__name__,
        methods=methods,
        n_features=n_features if isinstance(n_features, int) else None,
        feature_names=feature_names,
        classes=classes,
        classes_dtype=classes_dtype,
        kind=kind,
        n_outputs=_n_outputs(final, raw_classes, kind),
        decision_shape=_decision_shape(final, classes),
        n_transformed=_n_transformed(estimator) if "transform" in methods else -1,
        text_features=_text_features(estimator, indices, feature_names),
        sklearn_version=version if isinstance(version, str) else None,
    )


def _classes(raw: Any) -> tuple[list[Any] | None, np.dtype[Any] | None]:
    if raw is None:
        return None, None
    if isinstance(raw, list):  # a multi-output classifier: one array of labels per output
        arrays = [np.asarray(labels) for labels in raw]
        dtype = arrays[0].dtype if len({array.dtype for array in arrays}) == 1 else np.dtype(object)
        return [plain(array.tolist()) for array in arrays], dtype
    array = np.asarray(raw)
    return plain(array.tolist()), array.dtype


def plain(value: Any) -> Any:
    """`value` with numpy scalars inside lists turned into Python ones (an object array's tolist() keeps them)."""
    if isinstance(value, list):
        return [plain(item) for item in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _final_step(estimator: object) -> object:
    while (steps := getattr(estimator, "steps", None)) is not None:
        estimator = steps[-1][1]
    return estimator


def sklearn_tags(estimator: object) -> Any | None:
    """The estimator's scikit-learn tags; None for an object that has none: not an estimator of scikit-learn's, or a
    class rather than a fitted instance.

    Asked of the object itself, not through sklearn.utils.get_tags and the is_classifier family: for an object without
    tags, scikit-learn 1.7 warns (a DeprecationWarning) and falls back to default tags where 1.9 raises AttributeError,
    and is_classifier of a class warns on 1.7 too. A model that is no scikit-learn estimator must load the same, with
    no warning, on every release."""
    if isinstance(estimator, type):
        return None
    try:
        return estimator.__sklearn_tags__()  # type: ignore[attr-defined]
    except (AttributeError, TypeError):  # none (or a mixin's, calling a base that has none)
        return None


def _kind(estimator: object, has_classes: bool) -> str:
    kind = getattr(sklearn_tags(estimator), "estimator_type", None)
    if kind in ("classifier", "regressor", "clusterer", "outlier_detector"):
        return str(kind)
    return "classifier" if has_classes else "other"


def _n_outputs(final: object, raw_classes: Any, kind: str) -> int:
    if isinstance(raw_classes, list):
        return len(raw_classes)
    n_outputs = getattr(final, "n_outputs_", None)
    if isinstance(n_outputs, int):
        return n_outputs
    coef = getattr(final, "coef_", None)
    # A linear regressor's coef_ is (n_targets, n_features) when fitted on 2-D targets; a classifier's is per class.
    if kind == "regressor" and isinstance(coef, np.ndarray) and coef.ndim == 2:
        return int(coef.shape[0])
    return 1


def _decision_shape(final: object, classes: list[Any] | None) -> tuple[int, ...]:
    if classes is None or (len(classes) <= 2 and not isinstance(classes[0], list)):
        return (-1,)  # a binary classifier scores classes_[1] only
    if isinstance(classes[0], list):
        return (-1, -1)
    if getattr(final, "decision_function_shape", None) == "ovo":  # SVC's one-vs-one: a column per pair of classes
        return (-1, len(classes) * (len(classes) - 1) // 2)
    return (-1, len(classes))


def _n_transformed(estimator: Any) -> int:
    try:
        return len(estimator.get_feature_names_out())
    except (AttributeError, TypeError, ValueError):  # not every transformer can name its output columns
        return -1


def _text_features(step: object, columns: Sequence[int], names: Sequence[str] | None) -> dict[int, str]:
    """Which of `columns` (the step's inputs, as indices of the model's features) an encoder learnt strings for,
    through Pipelines' first steps and ColumnTransformers' column selections. Other transformers say nothing, so
    their columns count as numeric."""
    while (steps := getattr(step, "steps", None)) is not None:
        step = next((s for _, s in steps if not (s is None or s == "passthrough")), None)
    categories = getattr(step, "categories_", None)
    if isinstance(categories, list) and len(categories) == len(columns):
        return {
            column: text
            for column, values in zip(columns, categories, strict=True)
            if (text := next((v for v in np.asarray(values).tolist() if isinstance(v, str)), None)) is not None
        }
    transformers = getattr(step, "transformers_", None)
    if not isinstance(transformers, list):
        return {}
    step_names = getattr(step, "feature_names_in_", None)
    local_names = [str(n) for n in step_names] if step_names is not None else names
    found: dict[int, str] = {}
    for _, transformer, selection in transformers:
        positions = _positions(selection, len(columns), local_names)
        if positions is not None and not isinstance(transformer, str):  # "drop" and "passthrough" encode nothing
            found.update(_text_features(transformer, [columns[p] for p in positions], None))
    return found


def _positions(selection: Any, n_columns: int, names: Sequence[str] | None) -> list[int] | None:
    """A ColumnTransformer's column selection as positions; None for one it cannot be read from (a callable)."""
    if isinstance(selection, slice):
        return list(range(n_columns))[selection] if not isinstance(selection.start, str) else None
    items = np.asarray(selection).reshape(-1)
    if items.dtype == np.bool_:
        return np.flatnonzero(items).tolist() if items.size == n_columns else None
    if items.dtype.kind in "iu":
        return [int(i) for i in items if -n_columns <= int(i) < n_columns]
    if items.dtype.kind in "UO" and names is not None:
        wanted = [str(item) for item in items.tolist()]
        return [names.index(name) for name in wanted if name in names]
    return None


def signature(facts: Facts) -> Signature:
    """The model's tensors. Inputs: one FP64 tensor `input` of shape (-1, n_features), its `feature_names` in the
    parameters when the model was fitted on a DataFrame. A model that takes strings (see `_text_features`) cannot
    take them in one numeric tensor: fitted on a DataFrame, it lists one tensor per column, BYTES for string columns
    and FP64 for the others, each of shape (-1,); fitted on an array, one BYTES tensor `input`, whose numeric columns
    are parsed from their text. Outputs: one per prediction method, named after it."""
    width = facts.n_features if facts.n_features is not None else -1
    inputs: tuple[TensorSpec, ...]
    if facts.text_features and facts.feature_names is not None:
        inputs = tuple(
            TensorSpec(name, "BYTES" if index in facts.text_features else "FP64", (-1,))
            for index, name in enumerate(facts.feature_names)
        )
    else:
        parameters: dict[str, Any] = {}
        if facts.feature_names is not None:
            parameters["feature_names"] = list(facts.feature_names)
        if facts.text_features:
            parameters["string_columns"] = sorted(facts.text_features)
        datatype = "BYTES" if facts.text_features else "FP64"
        inputs = (TensorSpec("input", datatype, (-1, width), parameters),)
    return Signature(inputs, tuple(output_spec(facts, method) for method in facts.methods))


def output_spec(facts: Facts, method: str) -> TensorSpec:
    rows_and = (-1,) if facts.n_outputs == 1 else (-1, facts.n_outputs)
    classes = {"classes": facts.classes} if facts.classes is not None else {}
    if method == "predict":
        if facts.kind == "classifier" and facts.classes_dtype is not None:
            return TensorSpec(method, datatype_of(facts.classes_dtype), rows_and, classes)
        return TensorSpec(method, "INT64" if facts.kind in ("clusterer", "outlier_detector") else "FP64", rows_and)
    if method in ("predict_proba", "predict_log_proba"):
        if facts.classes is not None and facts.n_outputs > 1:  # one (rows, classes) block per output
            widths = {len(labels) for labels in facts.classes}
            return TensorSpec(method, "FP64", (facts.n_outputs, -1, widths.pop() if len(widths) == 1 else -1), classes)
        return TensorSpec(method, "FP64", (-1, len(facts.classes) if facts.classes is not None else -1), classes)
    if method == "decision_function":
        return TensorSpec(method, "FP64", facts.decision_shape, classes)
    if method == "transform":
        return TensorSpec(method, "FP64", (-1, facts.n_transformed))
    return TensorSpec(method, "FP64", (-1,))


def example(facts: Facts) -> dict[str, Any] | None:
    """A /score body of one row: zeros, and a learnt category for string features; records for a model fitted on a
    DataFrame. None when the model does not say how many features it takes."""
    if facts.n_features is None:
        return None
    row = [facts.text_features.get(index, 0.0) for index in range(facts.n_features)]
    if facts.feature_names is not None:
        return {"data": [dict(zip(facts.feature_names, row, strict=True))]}
    return {"data": [row]}
