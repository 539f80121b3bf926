"""The real server under concurrent load: requests for a model served without a script that wait together are
scored in one call, on /score and on the Open Inference Protocol's infer, under uvicorn and gunicorn; each client
still gets its own answer, a bad request its own 400; SCORING_MODEL_MAX_BATCH=1 scores each alone."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.conftest import ServerFactory
from tests.helpers import Server

pytestmark = pytest.mark.slow

CLIENTS = 16
ROUNDS = 12


@pytest.fixture(scope="module")
def slow_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    """A nearest-neighbours classifier that compares each row with 20,000 others: a millisecond or so per call, so
    that concurrent requests queue up behind one another."""
    import joblib  # type: ignore[import-untyped]
    from sklearn.neighbors import KNeighborsClassifier  # type: ignore[import-untyped]

    generator = np.random.default_rng(7)
    rows = generator.normal(size=(20_000, 4))
    labels = (rows[:, 0] + rows[:, 1] > 0).astype(np.int64) + (rows[:, 2] > 1)
    model = KNeighborsClassifier(n_neighbors=5, algorithm="brute").fit(rows, labels)
    folder = tmp_path_factory.mktemp("knn") / "model"
    folder.mkdir()
    joblib.dump(model, folder / "model.joblib")
    return folder, model


def _request(client: int, turn: int) -> tuple[str, Any, list[list[float]]]:
    """What client `client` sends on its `turn`: mostly good requests of 1 to 3 rows, some of them bad."""
    rows = [[client / 7 - 1, turn / 5 - 1, (client * turn) % 5 / 2 - 1, 0.5]] * (1 + (client + turn) % 3)
    kind = (client + 2 * turn) % 6
    if kind == 0:
        return "score-bad", {"data": [row[:3] for row in rows]}, rows
    if kind == 1:
        return "v2-bad", _v2(rows, ["fit"]), rows
    if kind in (2, 3):
        return "v2", _v2(rows, None), rows
    if kind == 4:
        return "score-predict", {"data": rows, "method": "predict"}, rows
    return "score", {"data": rows}, rows


def _v2(rows: list[list[float]], outputs: list[str] | None) -> dict[str, Any]:
    body: dict[str, Any] = {"inputs": [{"name": "x", "shape": [len(rows), 4], "datatype": "FP64", "data": rows}]}
    if outputs is not None:
        body["outputs"] = [{"name": name} for name in outputs]
    return body


def _load(server: Server, model: Any) -> None:
    def client(number: int) -> list[str]:
        problems = []
        for turn in range(ROUNDS):
            kind, body, rows = _request(number, turn)
            path = "/score" if kind.startswith("score") else "/v2/models/model/infer"
            answer = server.post(path, json=body)
            if kind.endswith("bad"):
                ok = answer.status_code == 400 and ("expected 4 features" in answer.text or "'fit'" in answer.text)
            elif kind == "v2":
                ok = answer.status_code == 200 and answer.json()["outputs"][0]["data"] == model.predict(rows).tolist()
            elif kind == "score-predict":
                ok = answer.status_code == 200 and answer.json() == model.predict(rows).tolist()
            else:
                ok = answer.status_code == 200 and np.allclose(answer.json(), model.predict_proba(rows))
            if not ok:
                problems.append(f"client {number} turn {turn} {kind}: {answer.status_code} {answer.text[:200]}")
        return problems

    with ThreadPoolExecutor(CLIENTS) as pool:
        problems = [problem for found in pool.map(client, range(CLIENTS)) for problem in found]
    assert not problems, problems[:5]


def _counted(server: Server, name: str) -> float:
    match = re.search(rf"^{name} (\S+)$", server.get("/metrics").text, re.MULTILINE)
    assert match is not None, name
    return float(match.group(1))


def test_requests_waiting_together_are_scored_in_one_call_each_with_its_own_answer(
    serve: ServerFactory, workers: int, slow_model: tuple[Path, Any]
) -> None:
    folder, model = slow_model
    server = serve(None, "--model_dir", str(folder), workers=workers)
    _load(server, model)
    batches = _counted(server, "scoring_model_batches_total")
    scored = _counted(server, "scoring_model_batched_requests_total")
    # Every request went through a batch, those the model refused too; sixteen clients of a model this slow keep
    # requests waiting, so some calls scored several (how many depends on the machine's timing).
    assert scored == CLIENTS * ROUNDS
    assert 0 < batches < scored
    assert "Traceback" not in server.log()
    assert server.get("/").status_code == 200


def test_a_batch_of_one_scores_every_request_alone(serve: ServerFactory, slow_model: tuple[Path, Any]) -> None:
    folder, model = slow_model
    server = serve(None, "--model_dir", str(folder), env={"SCORING_MODEL_MAX_BATCH": "1"})
    _load(server, model)
    assert _counted(server, "scoring_model_batches_total") == 0
