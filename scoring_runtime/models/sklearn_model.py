"""scikit-learn models served without a script: Azure ML's /score contract and the Open Inference Protocol for a
fitted estimator loaded from a .skops, .joblib, .pkl or .pickle file."""

from __future__ import annotations

import importlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from scoring_runtime.errors import BadRequest, ModelLoadError
from scoring_runtime.models import sklearn_batch
from scoring_runtime.models.base import CLASSES_HEADER, SKLEARN, Loaded, LoadOptions, Scored, classes_header
from scoring_runtime.models.sklearn_inputs import from_data, from_tensors
from scoring_runtime.models.sklearn_signature import (
    CLASS_COLUMNS,
    METHODS,
    Facts,
    available_methods,
    example,
    plain,
    read_facts,
    signature,
    sklearn_tags,
)
from scoring_runtime.models.tensors import numpy_dtype

if TYPE_CHECKING:
    from scoring_runtime.models.base import Inference

BODY_KEYS = ("data", "method", "with_classes")
METHOD_HEADER = "x-ms-model-method"
# scikit-learn's InconsistentVersionWarning, raised on unpickling an estimator saved by another version.
_SAVED_BY = re.compile(r"from version (\S+) when using version")


@dataclass(frozen=True)
class ScoreRequest:
    """A checked /score body: the method to call, the estimator's input, whether the answer names the classes."""

    method: str
    features: Any
    with_classes: bool


def load_sklearn(path: Path, name: str, version: str | None, options: LoadOptions) -> SklearnModel:
    """Read a fitted estimator: a .skops file through skops' type checks, anything else as a pickle, both within what
    the operator trusts. ModelLoadError when the file holds no fitted estimator."""
    from scoring_runtime.models import trust

    loader = trust.load_skops if path.suffix.lower() == ".skops" else trust.load_pickle
    estimator, warnings = loader(path, options)
    return SklearnModel(estimator, name, version, Loaded(path, list(warnings)))


class SklearnModel:
    """A fitted estimator as a ServedModel. Everything about it is read once here; a call only reads, so any number
    of run threads may score at once."""

    framework = SKLEARN

    def __init__(self, estimator: object, name: str, version: str | None, loaded: Loaded) -> None:
        methods = available_methods(estimator)
        if not methods:
            raise ModelLoadError(
                f"{loaded.path} holds {_type_name(estimator)}, not a scikit-learn estimator: it has none of the "
                f"methods {', '.join(METHODS)}"
            )
        _check_fitted(estimator, loaded.path)
        self.estimator = estimator
        self.name = name
        self.version = version
        self.loaded = loaded
        self.facts: Facts = read_facts(estimator, methods)
        self.signature = signature(self.facts)
        self._calls = {method: getattr(estimator, method) for method in methods}
        self._classes_header = classes_header(self.facts.classes)

    def score(self, data: Any) -> Scored:
        """Azure ML's body, `{"data": [[...], ...], "method": "predict", "with_classes": false}`, answered with the
        method's plain result. `method` defaults to Facts.default_method. The headers name the method, and the
        classes whose columns predict_proba, predict_log_proba and decision_function answer; `with_classes` puts
        both in the body instead: `{"method": ..., "classes": [...], "predictions": [...]}`."""
        request = self.score_request(data)
        return self.score_answer(request, self.call(request.method, request.features))

    def score_request(self, data: Any) -> ScoreRequest:
        """A /score body checked and turned into the estimator's input; BadRequest naming what is wrong."""
        if not isinstance(data, dict):
            raise BadRequest('The body must be a JSON object: {"data": [[...], ...]}, one list of values per row')
        unknown = [key for key in data if key not in BODY_KEYS]
        if unknown:
            raise BadRequest(f"Unknown keys in the body: {', '.join(unknown)}; it takes {', '.join(BODY_KEYS)}")
        method = self._method(data.get("method"))
        with_classes = data.get("with_classes", False)
        if not isinstance(with_classes, bool):
            raise BadRequest('"with_classes" must be true or false')
        if "data" not in data:
            raise BadRequest('The body has no "data": send {"data": [[...], ...]}, one list of values per row')
        return ScoreRequest(method, from_data(data["data"], self.facts), with_classes)

    def score_answer(self, request: ScoreRequest, result: Any) -> Scored:
        """The answer to a /score request, from what its method returned for its rows."""
        value = jsonable(result)
        method = request.method
        headers = [(METHOD_HEADER, method)]
        if method in CLASS_COLUMNS and self._classes_header is not None:
            headers.append((CLASSES_HEADER, self._classes_header))
        if request.with_classes:
            value = {"method": method, "classes": self.facts.classes, "predictions": value}
        return Scored(value, tuple(headers))

    def infer(self, inputs: Mapping[str, np.ndarray[Any, Any]], outputs: Sequence[str] | None) -> dict[str, Any]:
        """Outputs are named after the methods; without a choice, predict (MLServer's default), or the default
        method of a model without predict. String results are BYTES: object arrays of UTF-8 bytes."""
        names, features = self.infer_request(inputs, outputs)
        return {name: self.tensor(name, self.call(name, features)) for name in names}

    def infer_request(
        self, inputs: Mapping[str, np.ndarray[Any, Any]], outputs: Sequence[str] | None
    ) -> tuple[tuple[str, ...], Any]:
        """The methods an inference asks for (its outputs), and the estimator's input from its tensors."""
        default = "predict" if "predict" in self._calls else self.facts.default_method
        names = tuple(dict.fromkeys(outputs)) if outputs else (default,)
        unknown = [name for name in names if name not in self._calls]
        if unknown:
            raise BadRequest(
                f"Unknown outputs {', '.join(map(repr, unknown))}; this model's outputs: {', '.join(self._calls)}"
            )
        return names, from_tensors(inputs, self.facts)

    def score_many(self, bodies: Sequence[Any]) -> list[Scored | Exception]:
        """`score` of several bodies, stacked into as few calls of the estimator as they allow (sklearn_batch.py)."""
        return sklearn_batch.score_many(self, bodies)

    def infer_many(self, inferences: Sequence[Inference]) -> list[dict[str, Any] | Exception]:
        """`infer` of several inferences, stacked as `score_many` stacks bodies."""
        return sklearn_batch.infer_many(self, inferences)

    def example(self) -> dict[str, Any] | None:
        """An example /score body for the API documents; None when the model does not say what it takes."""
        return example(self.facts)

    def describe(self) -> dict[str, Any]:
        """What the model is, JSON-able, for the metadata. `sklearn_version` is the release that saved the estimator
        where known: its `_sklearn_version`, or the one a version-mismatch warning of the load named (unpickling
        keeps it nowhere else); None otherwise."""
        facts = self.facts
        texts = [
            facts.feature_names[index] if facts.feature_names is not None else index
            for index in sorted(facts.text_features)
        ]
        return {
            "estimator": facts.type_name,
            "n_features_in": facts.n_features,
            "feature_names": list(facts.feature_names) if facts.feature_names is not None else None,
            "string_features": texts,
            "classes": facts.classes,
            "methods": list(facts.methods),
            "default_method": facts.default_method,
            "sklearn_version": facts.sklearn_version or _saved_by(self.loaded.warnings),
            "warnings": list(self.loaded.warnings),
        }

    def _method(self, method: Any) -> str:
        if method is None:
            return self.facts.default_method
        if not isinstance(method, str) or method not in self._calls:
            raise BadRequest(
                f"Method {method!r} is not available for this {self.facts.type_name}; allowed: {', '.join(self._calls)}"
            )
        return method

    def call(self, method: str, features: Any) -> Any:
        """The estimator's `method` on `features`; BadRequest for what it refuses in them."""
        try:
            return self._calls[method](features)
        except (ValueError, TypeError) as error:
            # What the estimator refuses in the input is the client's to fix; anything else is the server's (500).
            raise BadRequest(f"{self.facts.type_name}.{method} cannot take this input: {error}") from error

    def tensor(self, name: str, result: Any) -> np.ndarray[Any, Any]:
        """A method's result as the output tensor the signature declares."""
        result = _dense(result)
        if isinstance(result, list):  # a multi-output classifier's probabilities: a (rows, classes) block per output
            try:
                array = np.stack([np.asarray(block) for block in result])
            except ValueError:
                raise BadRequest(
                    f"{name} answers blocks of different widths, one per output, which no tensor holds: use /score"
                ) from None
        else:
            array = np.asarray(result)
        if array.dtype.kind in "OUS":
            return _as_bytes(array)
        spec = self.signature.output(name)
        # The declared type, whatever precision the estimator computed in: the metadata stays true.
        return array if spec is None or spec.datatype == "BYTES" else array.astype(numpy_dtype(spec.datatype))


def jsonable(value: Any) -> Any:
    """A prediction as JSON-able Python values: arrays (dense, sparse or pandas) as nested lists, numpy scalars as
    Python ones, string labels as strings."""
    value = _dense(value)
    if isinstance(value, (list, tuple)):  # a multi-output classifier's probabilities: one array per output
        return [jsonable(item) for item in value]
    array = np.asarray(value)
    return plain(array.tolist()) if array.dtype == object else array.tolist()


def _dense(value: Any) -> Any:
    if hasattr(value, "toarray"):  # scipy.sparse, as OneHotEncoder transforms by default
        return value.toarray()
    if hasattr(value, "to_numpy"):  # pandas, from an estimator set_output(transform="pandas")
        return value.to_numpy()
    return value


def _as_bytes(array: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    encoded: np.ndarray[Any, Any] = np.empty(array.size, dtype=object)
    encoded[:] = [item.encode() if isinstance(item, str) else item for item in array.ravel().tolist()]
    shaped: np.ndarray[Any, Any] = encoded.reshape(array.shape)
    return shaped


def _check_fitted(estimator: object, path: Path) -> None:
    # check_is_fitted reads the estimator's tags, which an object that is no scikit-learn estimator lacks (a warning
    # on scikit-learn 1.7, an AttributeError from 1.8): nothing says whether such an object is fitted.
    if sklearn_tags(estimator) is None:
        return
    # scikit-learn ships no type information: reached through importlib, its names are Any.
    validation = importlib.import_module("sklearn.utils.validation")
    not_fitted = importlib.import_module("sklearn.exceptions").NotFittedError
    try:
        validation.check_is_fitted(estimator)
    except not_fitted:
        raise ModelLoadError(f"{path} holds {_type_name(estimator)} that was never fitted: fit it, then save it")
    except TypeError:  # not a scikit-learn estimator: nothing says whether it is fitted
        pass


def _saved_by(warnings: Sequence[str]) -> str | None:
    # Unpickling drops an estimator's _sklearn_version; only the warning about a version mismatch still names it.
    return next((match.group(1) for warning in warnings if (match := _SAVED_BY.search(warning))), None)


def _type_name(value: object) -> str:
    kind = type(value)
    return f"a {kind.__module__}.{kind.__qualname__}"
