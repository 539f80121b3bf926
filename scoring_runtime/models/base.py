"""What every model backend provides, and what loading one is given."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

if TYPE_CHECKING:
    # numpy only for the types: the app imports Scored for every script, and a plain script never loads numpy.
    import numpy as np

    from scoring_runtime.models.tensors import Signature

    # An Open Inference Protocol call: the decoded input tensors by name, the outputs asked for (None: the defaults).
    Inference = tuple[Mapping[str, np.ndarray[Any, Any]], Sequence[str] | None]

# The header that names the classes whose columns a /score answer holds, as compact JSON (ASCII: non-ASCII labels
# are \u escapes, as headers need); left out past MAX_CLASSES_HEADER characters, as clients cap a response head near
# 16 KiB.
CLASSES_HEADER = "x-ms-model-classes"
MAX_CLASSES_HEADER = 4096


def classes_header(classes: Sequence[Any] | None) -> str | None:
    if classes is None:
        return None
    text = json.dumps(list(classes), separators=(",", ":"))
    return text if len(text) <= MAX_CLASSES_HEADER else None


# Our framework names; Azure ML's (`ScikitLearn`, `Onnx`, `TensorFlow`) map onto them in formats.py.
SKLEARN = "sklearn"
ONNX = "onnx"
TENSORFLOW = "tensorflow"
XGBOOST = "xgboost"
LIGHTGBM = "lightgbm"


@dataclass(frozen=True)
class LoadOptions:
    """What the operator trusts, and the threads a model may use: set once from the settings, given to every load."""

    trust_pickle: bool = False  # SCORING_TRUST_PICKLE: unpickle anything
    sha256: str | None = None  # SCORING_MODEL_SHA256: the artifact's digest, lower-case hex
    skops_trusted: tuple[str, ...] = ()  # SCORING_SKOPS_TRUSTED: types a .skops file may hold beyond skops' defaults
    # SCORING_MODEL_THREADS resolved (cpus.py): the threads of a runtime's own pool (onnxruntime's, which reads no
    # environment variable); None keeps the runtime's default.
    threads: int | None = None


@dataclass(frozen=True)
class Scored:
    """A /score answer: the value the body encodes as JSON, and response headers that describe it."""

    value: Any
    headers: tuple[tuple[str, str], ...] = ()


@dataclass
class Loaded:
    """Facts about a load, for the metadata: warnings the framework raised while loading (a scikit-learn model
    trained with another version), and the file that was read."""

    path: Path
    warnings: list[str] = field(default_factory=list)


class ServedModel(Protocol):
    """A loaded model. `score` and `infer` run on a run thread, several at once: they must be thread-safe."""

    name: str
    version: str | None
    framework: str
    signature: Signature
    loaded: Loaded

    def score(self, data: Any) -> Scored:
        """Azure ML's /score contract for this framework; `data` is the parsed JSON body. Raises BadRequest for input
        the model cannot take (named: which feature, which row, which method)."""
        ...

    def infer(self, inputs: Mapping[str, np.ndarray[Any, Any]], outputs: Sequence[str] | None) -> dict[str, Any]:
        """The Open Inference Protocol's call: decoded input tensors by name, the output names asked for (None: the
        model's defaults). Returns numpy arrays by output name. Raises BadRequest for unknown names, wrong shapes or
        datatypes."""
        ...


class BatchedModel(ServedModel, Protocol):
    """A model that scores several requests in fewer calls than one each (see sklearn_batch.py). Each answer is the
    one `score` or `infer` would have given that request alone, or the exception it would have raised."""

    def score_many(self, bodies: Sequence[Any]) -> list[Scored | Exception]: ...

    def infer_many(self, inferences: Sequence[Inference]) -> list[dict[str, Any] | Exception]: ...


def batched(model: ServedModel) -> BatchedModel | None:
    """The model as a BatchedModel, when it is one."""
    if callable(getattr(model, "score_many", None)) and callable(getattr(model, "infer_many", None)):
        return cast("BatchedModel", model)
    return None
