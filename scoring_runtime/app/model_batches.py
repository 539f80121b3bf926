"""The requests for a model served without a script that wait for a run thread at the same time, scored in one
call (contract/batches.py, models/sklearn_batch.py): /score's, and the Open Inference Protocol's infer.

Each request keeps its own outcome: a body that does not parse, an input the model refuses, an unknown model name
are that request's 4xx alone, as they would be unbatched; the others of the batch are answered as if it were not
there.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from starlette.responses import Response

from scoring_runtime.app.open_inference import infer_response
from scoring_runtime.app.scoring import respond
from scoring_runtime.app.served_models import Catalogue
from scoring_runtime.contract import payload
from scoring_runtime.contract.batches import Batch
from scoring_runtime.contract.script import UserScript
from scoring_runtime.models import v2_codec
from scoring_runtime.models.base import BatchedModel, batched
from scoring_runtime.observability.metrics import Metrics

# One request's argument: its body, and what the route adds (the V2 binary header's length, the model and version).
Argument = tuple[bytes, Any]


def _batched_model(catalogue: Catalogue | None, max_size: int) -> tuple[str, BatchedModel] | None:
    """The one model a catalogue serves, when it can score requests together and batches are allowed."""
    if catalogue is None or catalogue.is_repository or max_size <= 1:
        return None
    name = catalogue.default_name()
    if name is None:
        return None
    with catalogue.lease(name) as model:
        found = batched(model)
    return (name, found) if found is not None else None


def score_batch(
    script: UserScript, catalogue: Catalogue | None, max_size: int, metrics: Metrics | None
) -> Batch | None:
    """/score's batch for the one model of a deployment without a script; None when it has none to batch."""
    served = _batched_model(catalogue, max_size)
    if served is None:
        return None
    _, model = served
    finished = _recorder(metrics, runs=True)

    def parse(argument: Argument) -> Any:
        return payload.model_input("POST", argument[0], b"")  # only ever a BadRequest: the body is not JSON

    def answer(_: Any, result: Any, elapsed_ms: float) -> Any:
        return script.failure(result) if isinstance(result, Exception) else respond(result, elapsed_ms)

    return Batch(lambda arguments: _scored(arguments, parse, model.score_many, answer, finished), max_size)


def infer_batch(catalogue: Catalogue | None, max_size: int, metrics: Metrics | None) -> Batch | None:
    """The V2 infer route's batch for the one model of a deployment without a script; None when it has none."""
    served = _batched_model(catalogue, max_size)
    if served is None:
        return None
    assert catalogue is not None
    name, model = served
    finished = _recorder(metrics, runs=False)

    def parse(argument: Argument) -> v2_codec.InferRequest:
        body, (header_length, asked, version) = argument
        request = v2_codec.decode_request(body, header_length)
        if asked != name or version is not None:
            with catalogue.lease(asked, version):  # the NotFound naming what is served, or the same model
                pass
        return request

    def call(requests: list[v2_codec.InferRequest]) -> list[Any]:
        return model.infer_many([(request.inputs, request.output_names()) for request in requests])

    def answer(request: v2_codec.InferRequest, result: Any, _: float) -> Any:
        return result if isinstance(result, Exception) else _safely(infer_response, model, request, result)

    return Batch(lambda arguments: _scored(arguments, parse, call, answer, finished), max_size)


def _scored(
    arguments: list[Argument],
    parse: Callable[[Argument], Any],
    call: Callable[[list[Any]], list[Any]],
    answer: Callable[[Any, Any, float], Any],
    finished: Callable[[int, float], None],
) -> list[Any]:
    """Each request's outcome: its parse error alone, or its answer from one model call for all that parsed."""
    outcomes: list[Any] = [None] * len(arguments)
    parsed = []
    positions = []
    for index, argument in enumerate(arguments):
        try:
            parsed.append(parse(argument))
            positions.append(index)
        except Exception as error:
            outcomes[index] = error
    if not parsed:
        return outcomes
    started = time.perf_counter()
    results = call(parsed)
    elapsed_ms = (time.perf_counter() - started) * 1000.0
    finished(len(parsed), elapsed_ms)
    for index, item, result in zip(positions, parsed, results, strict=True):
        outcomes[index] = answer(item, result, elapsed_ms)
    return outcomes


def _recorder(metrics: Metrics | None, runs: bool) -> Callable[[int, float], None]:
    """Counts each batch; `runs`: and each request's run time, as /score's unbatched calls are timed."""

    def finished(size: int, elapsed_ms: float) -> None:
        if metrics is not None and size:
            metrics.batch_finished(size)
            for _ in range(size if runs else 0):
                metrics.run_finished(elapsed_ms)

    return finished


def _safely(build: Callable[..., Response], *args: Any) -> Response | Exception:
    try:
        return build(*args)
    except Exception as error:
        return error
