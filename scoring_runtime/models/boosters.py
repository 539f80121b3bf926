"""XGBoost and LightGBM boosters saved in their own formats (XGBoost's .ubj, .json, .bst; LightGBM's model.txt: none
is a pickle), served as tabular models: rows of feature values in, one prediction (or one row of class
probabilities) per row out.

JSON null is a missing value (NaN), which both libraries take as such.
"""

from __future__ import annotations

import importlib
import json
import threading
import warnings
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from operator import attrgetter
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from scoring_runtime.errors import BadRequest, ModelLoadError
from scoring_runtime.models.base import LIGHTGBM, XGBOOST, Loaded, LoadOptions, Scored
from scoring_runtime.models.tensors import Signature, TensorSpec, datatype_of
from scoring_runtime.models.trust import verify_digest

INPUT = "input"
OUTPUT = "predict"
Predict = Callable[[np.ndarray[Any, Any]], np.ndarray[Any, Any]]


@dataclass(frozen=True)
class _Library:
    """What a booster library's load needs to know of it, and to name it in errors."""

    title: str
    module: str  # also the name of the extra that installs it
    error: str  # its own error class, dotted from the module
    article: str


_XGBOOST = _Library("XGBoost", "xgboost", "core.XGBoostError", "an")
_LIGHTGBM = _Library("LightGBM", "lightgbm", "basic.LightGBMError", "a")


def load_xgboost(path: Path, name: str, version: str | None, options: LoadOptions) -> BoosterModel:
    """An XGBoost booster from its own model file."""
    xgboost, booster, loaded = _read_booster(path, options, _XGBOOST)
    learner = json.loads(booster.save_config())["learner"]
    kind = learner["gradient_booster"]["name"]
    lock: threading.Lock | None = None
    if kind in ("gbtree", "dart"):
        # Thread-safe for tree boosters (XGBoost's prediction documentation, "Thread Safety"), without a DMatrix.
        def predict(rows: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
            return np.asarray(booster.inplace_predict(rows))
    else:
        # gblinear has no in-place prediction, and XGBoost promises thread safety for tree boosters only.
        lock = threading.Lock()

        def predict(rows: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
            return np.asarray(booster.predict(xgboost.DMatrix(rows)))

    about = {
        "library_version": xgboost.__version__,
        "booster": kind,
        "objective": learner["objective"]["name"],
        "boosted_rounds": booster.num_boosted_rounds(),
    }
    features = (booster.num_features(), booster.feature_names)
    return BoosterModel(XGBOOST, name, version, loaded, predict, features, np.dtype(np.float32), lock, about)


def load_lightgbm(path: Path, name: str, version: str | None, options: LoadOptions) -> BoosterModel:
    """A LightGBM booster from its text model file."""
    lightgbm, booster, loaded = _read_booster(path, options, _LIGHTGBM)

    def predict(rows: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        return np.asarray(booster.predict(rows))

    names = booster.feature_name()
    # Names LightGBM made up for unnamed columns tell a client nothing.
    given = None if names == [f"Column_{index}" for index in range(len(names))] else names
    about = {
        "library_version": lightgbm.__version__,
        "objective": booster.params.get("objective"),
        "trees": booster.num_trees(),
        "iterations": booster.current_iteration(),
    }
    # Every predict call re-initialises the booster's shared prediction state (GBDT::InitPredict), a data race between
    # threads (lightgbm-org/LightGBM#6142); a call is parallel inside already (OpenMP), so one at a time costs little.
    lock = threading.Lock()
    features = (booster.num_feature(), given)
    return BoosterModel(LIGHTGBM, name, version, loaded, predict, features, np.dtype(np.float64), lock, about)


def _read_booster(path: Path, options: LoadOptions, library: _Library) -> tuple[ModuleType, Any, Loaded]:
    """The library's module and the Booster it reads from `path`, with the warnings the read gave. The digest comes
    first: a file that is not the trusted one is refused as such, whether or not the library is installed."""
    verify_digest(path, options.sha256)
    try:
        module = importlib.import_module(library.module)
    except ImportError:
        raise ModelLoadError(_missing(path, library.title, library.module)) from None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            booster = module.Booster(model_file=str(path))
        except (attrgetter(library.error)(module), ValueError) as error:
            problem = f"is not {library.article} {library.title} model {library.title} can load"
            raise ModelLoadError(f"{path} {problem}: {_first_line(error)}") from None
    return module, booster, Loaded(path, [str(warning.message) for warning in caught])


class BoosterModel:
    """A booster behind the tabular contract: input `input` (rows × features), output `predict`."""

    def __init__(
        self,
        framework: str,
        name: str,
        version: str | None,
        loaded: Loaded,
        predict: Predict,
        features: tuple[int, Sequence[str] | None],
        dtype: np.dtype[Any],
        lock: threading.Lock | None,
        about: Mapping[str, Any],
    ) -> None:
        self.framework = framework
        self.name = name
        self.version = version
        self.loaded = loaded
        self._predict = predict
        self._features, names = features
        self._dtype = dtype
        self._lock: AbstractContextManager[Any] = lock if lock is not None else nullcontext()
        self._about = dict(about)
        # One row tells the output's shape: (rows,) for most objectives, (rows, classes) for multi:softprob and
        # LightGBM's multiclass, (rows, targets) for multi-target regression.
        try:
            probe = self._predict(np.zeros((1, self._features), dtype=dtype))
        except Exception as error:  # the library's own error classes
            raise ModelLoadError(f"{loaded.path} cannot predict one row of zeros: {_first_line(error)}") from None
        self._output_tail, self._output_dtype = probe.shape[1:], probe.dtype
        parameters = {"feature_names": list(names)} if names else {}
        self.signature = Signature(
            (TensorSpec(INPUT, datatype_of(dtype), (-1, self._features), parameters),),
            (TensorSpec(OUTPUT, datatype_of(probe.dtype), (-1, *self._output_tail)),),
        )

    def score(self, data: Any) -> Scored:
        """`{"data": [[...], ...]}`, with an optional `"method": "predict"`: the predictions as a list."""
        if not isinstance(data, dict) or "data" not in data:
            raise BadRequest('The body must be a JSON object {"data": [[...feature values...], ...]}')
        unknown = sorted(set(data) - {"data", "method"})
        if unknown:
            raise BadRequest(f'Unknown keys {", ".join(map(repr, unknown))}: the body takes "data" and "method"')
        method = data.get("method", OUTPUT)
        if method != OUTPUT:
            raise BadRequest(f'Unknown method {json.dumps(method)}: a {self.framework} booster answers "predict"')
        return Scored(self._run(self._rows(data["data"])).tolist())

    def infer(self, inputs: Mapping[str, np.ndarray[Any, Any]], outputs: Sequence[str] | None) -> dict[str, Any]:
        """The one input, a 2-D tensor of numbers cast to the booster's float type; the one output."""
        if set(inputs) != {INPUT}:
            raise BadRequest(
                f"The model takes one input, '{INPUT}'; got {', '.join(map(repr, sorted(inputs))) or 'none'}"
            )
        if outputs is not None and set(outputs) - {OUTPUT}:
            raise BadRequest(f"Unknown outputs: {', '.join(map(repr, outputs))}. The model has '{OUTPUT}'")
        array = inputs[INPUT]
        wanted = self.signature.inputs[0]
        if array.dtype.kind not in "biuf" or not np.can_cast(array.dtype, self._dtype, "same_kind"):
            raise BadRequest(
                f"Input '{INPUT}' was sent as {datatype_of(array.dtype)}; the model takes {wanted.datatype}"
            )
        if array.ndim != 2 or array.shape[1] != self._features:
            raise BadRequest(
                f"Input '{INPUT}' has shape {list(array.shape)}; the model takes {list(wanted.shape)} (-1: any size)"
            )
        return {OUTPUT: self._run(self._cast(array))}

    def example(self) -> dict[str, Any] | None:
        return {"data": [[0.0] * self._features]}

    def describe(self) -> dict[str, Any]:
        return {
            "framework": self.framework,
            **self._about,
            "num_features": self._features,
            "inputs": [spec.to_metadata() for spec in self.signature.inputs],
            "outputs": [spec.to_metadata() for spec in self.signature.outputs],
        }

    def _run(self, rows: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        if not len(rows):  # the libraries warn about, or misshape, an empty batch
            return np.empty((0, *self._output_tail), dtype=self._output_dtype)
        with self._lock:
            return self._predict(rows)

    def _rows(self, value: Any) -> np.ndarray[Any, Any]:
        """JSON rows as a (rows, features) array; BadRequest naming the first row that is not a list of numbers."""
        if not isinstance(value, list):
            raise BadRequest(f'"data" must be a list of rows, each a list of {self._features} feature values')
        if not value:
            return np.empty((0, self._features), dtype=self._dtype)
        try:
            raw = np.array(value)  # no dtype: a float type would parse numeric strings
        except ValueError:  # ragged
            raise BadRequest(self._bad_rows(value)) from None
        numbers = raw.dtype.kind in "biuf" or (raw.dtype.kind == "O" and all(map(_is_number, raw.flat)))
        if not numbers or raw.ndim != 2 or raw.shape[1] != self._features:
            raise BadRequest(self._bad_rows(value))
        return self._cast(raw)

    def _cast(self, array: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        try:
            with np.errstate(over="raise"):
                return np.asarray(array, dtype=self._dtype)
        except (FloatingPointError, OverflowError):
            raise BadRequest(f"Feature values too large for {datatype_of(self._dtype)}") from None

    def _bad_rows(self, rows: list[Any]) -> str:
        for index, row in enumerate(rows):
            if not isinstance(row, list):
                return f"Row {index} is not a list of feature values"
            if len(row) != self._features:
                return f"Row {index} has {len(row)} values; the model takes {self._features} features"
            bad = next((item for item in row if not _is_number(item)), None)
            if bad is not None:
                return f"Row {index} holds {json.dumps(bad, default=str)[:40]}, not a number or null"
        return f'"data" must be a list of rows, each a list of {self._features} numbers or nulls'


def _is_number(value: object) -> bool:
    return value is None or isinstance(value, (int, float))


def _missing(path: Path, framework: str, extra: str) -> str:
    return f"{path} is a {framework} model, and {extra} is not installed: pip install 'scoring-runtime[{extra}]'"


def _first_line(error: Exception) -> str:
    # XGBoost appends a native stack trace to its messages.
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
