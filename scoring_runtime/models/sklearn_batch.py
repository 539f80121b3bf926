"""Several requests for one scikit-learn model scored in one call of its method.

Every call of a scikit-learn method pays a fixed cost before it touches a row: checking and converting its input,
reading the estimator's tags and configuration. For a small model that cost is most of a request (about 150 µs of
an iris classifier's predict_proba, whether for 1 row or 64). Requests that wait for a run thread together are
therefore stacked into one input, scored once, and the result cut back into each request's rows.

This is sound because scikit-learn's prediction methods treat rows independently: its estimator checks
(`check_methods_subset_invariance`, `check_methods_sample_order_invariance`) require predict, predict_proba,
decision_function, score_samples and transform to give a row the same result in any batch, up to floating-point
rounding (a matrix product over 8 rows may round a last bit differently than over 1).

A request whose input cannot be stacked with the others (other columns, other dtypes, another method) is scored in a
call of its own; when a stacked call fails, each request is scored alone, so that an error names the request at
fault and no other request shares it.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from scoring_runtime.models.base import Scored

if TYPE_CHECKING:
    from scoring_runtime.models.base import Inference
    from scoring_runtime.models.sklearn_model import ScoreRequest, SklearnModel


def score_many(model: SklearnModel, bodies: Sequence[Any]) -> list[Scored | Exception]:
    """`model.score` of each /score body, in order: the answer, or the exception that request raised."""
    outcomes: list[Any] = [None] * len(bodies)
    requests: list[tuple[int, ScoreRequest]] = []
    for index, body in enumerate(bodies):
        try:
            requests.append((index, model.score_request(body)))
        except Exception as error:
            outcomes[index] = error
    for method, group in _groups(requests, lambda request: request.method, lambda request: request.features):
        results = call_together(model.call, method, [request.features for _, request in group])
        for (index, request), result in zip(group, results, strict=True):
            outcomes[index] = result if isinstance(result, Exception) else _answer(model, request, result)
    return outcomes


def infer_many(model: SklearnModel, inferences: Sequence[Inference]) -> list[dict[str, Any] | Exception]:
    """`model.infer` of each inference (input tensors, outputs asked for), in order: the output arrays by name, or
    the exception that inference raised."""
    outcomes: list[Any] = [None] * len(inferences)
    requests: list[tuple[int, tuple[tuple[str, ...], Any]]] = []
    for index, (inputs, outputs) in enumerate(inferences):
        try:
            requests.append((index, model.infer_request(inputs, outputs)))
        except Exception as error:
            outcomes[index] = error
    # Grouped by the set of outputs: a request for [predict, predict_proba] shares both calls with its reverse.
    for wanted, group in _groups(requests, lambda request: frozenset(request[0]), lambda request: request[1]):
        features = [request[1] for _, request in group]
        results = {name: call_together(model.call, name, features) for name in sorted(wanted)}
        for position, (index, (names, _)) in enumerate(group):
            outcomes[index] = _outputs(model, {name: results[name][position] for name in names})
    return outcomes


def call_together(call: Callable[[str, Any], Any], method: str, parts: Sequence[Any]) -> list[Any]:
    """`call(method, part)` of each part, through one call on the parts stacked when there are several: each
    part's result, or the exception its own call raised."""
    if len(parts) > 1:
        try:
            whole = call(method, stack(parts))
        except Exception:  # one part at fault, or the stack itself: each part alone tells which
            pass
        else:
            results = split(whole, [rows(part) for part in parts])
            if results is not None:
                return results
    return [_alone(call, method, part) for part in parts]


def stack(parts: Sequence[Any]) -> Any:
    """The parts' rows as one input of the same kind: an array, or a DataFrame with a fresh index."""
    if isinstance(parts[0], pd.DataFrame):
        return pd.concat(parts, ignore_index=True)
    return np.concatenate(parts)


def split(result: Any, counts: Sequence[int]) -> list[Any] | None:
    """The stacked call's result cut into each part's rows; None when it does not have one row per input row (a
    method that is not row by row, which the parts then answer one by one)."""
    if isinstance(result, list):  # a multi-output classifier's probabilities: one (rows, classes) block per output
        blocks = [split(block, counts) for block in result]
        if any(block is None for block in blocks):
            return None
        return [[block[position] for block in blocks if block is not None] for position in range(len(counts))]
    if hasattr(result, "tocsr"):  # scipy.sparse: only compressed rows can be sliced
        result = result.tocsr()
    total = sum(counts)
    if getattr(result, "ndim", 0) < 1 or result.shape[0] != total:
        return None
    cut = result.iloc if isinstance(result, (pd.DataFrame, pd.Series)) else result
    pieces = []
    start = 0
    for count in counts:
        pieces.append(cut[start : start + count])
        start += count
    return pieces


def rows(part: Any) -> int:
    return int(part.shape[0])


def compatible(part: Any) -> Hashable:
    """What inputs must share to be stacked without changing what the estimator sees: the kind, the dtypes (a float
    and an integer array would stack as floats) and the columns."""
    if isinstance(part, pd.DataFrame):
        return ("frame", tuple(part.columns), tuple(str(dtype) for dtype in part.dtypes))
    if isinstance(part, np.ndarray) and part.ndim >= 1:
        return ("array", part.dtype.str, part.shape[1:])
    return ("alone", id(part))


def _groups(
    requests: list[tuple[int, Any]], key: Callable[[Any], Any], features: Callable[[Any], Any]
) -> list[tuple[Any, list[tuple[int, Any]]]]:
    """The requests by what they ask (`key`) and what can be stacked, in order of first arrival."""
    groups: dict[tuple[Hashable, Hashable], tuple[Any, list[tuple[int, Any]]]] = {}
    for index, request in requests:
        asked = key(request)
        group = groups.setdefault((asked, compatible(features(request))), (asked, []))
        group[1].append((index, request))
    return list(groups.values())


def _answer(model: SklearnModel, request: ScoreRequest, result: Any) -> Scored | Exception:
    try:
        return model.score_answer(request, result)
    except Exception as error:
        return error


def _outputs(model: SklearnModel, results: dict[str, Any]) -> dict[str, Any] | Exception:
    """One inference's output tensors in the order it asked for them, or the first failure among them."""
    tensors = {}
    for name, result in results.items():
        if isinstance(result, Exception):
            return result
        try:
            tensors[name] = model.tensor(name, result)
        except Exception as error:
            return error
    return tensors


def _alone(call: Callable[[str, Any], Any], method: str, part: Any) -> Any:
    try:
        return call(method, part)
    except Exception as error:
        return error
