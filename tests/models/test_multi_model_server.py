"""A multi-model folder (`<name>/<version>/`) served by the real server: models load on first use, the repository
extension lists, loads and unloads them, and the memory budget evicts idle ones."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.conftest import ServerFactory
from tests.helpers import Server
from tests.models.test_nocode_server import ROWS, iris_model

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("models")
    for name, version in (("iris", "1"), ("iris", "2"), ("other", "1")):
        iris_model(root / name / version)
    return root


def index(server: Server) -> dict[tuple[str, str], dict[str, Any]]:
    answer = server.post("/v2/repository/index")
    assert answer.status_code == 200, answer.text
    return {(entry["name"], entry["version"]): entry for entry in answer.json()}


def infer(server: Server, path: str) -> int:
    body = {"inputs": [{"name": "input", "datatype": "FP64", "shape": [2, 4], "data": ROWS}]}
    return server.post(f"{path}/infer", json=body).status_code


def test_models_load_on_first_use_and_unload(serve: ServerFactory, repository: Path) -> None:
    server = serve(None, "--model_dir", str(repository))
    assert {entry["state"] for entry in index(server).values()} == {"UNAVAILABLE"}
    assert server.get("/v2/models/iris/ready").json()["ready"] is True  # it loads on its first request
    assert infer(server, "/v2/models/iris") == 200
    states = {key: entry["state"] for key, entry in index(server).items()}
    assert states == {("iris", "1"): "UNAVAILABLE", ("iris", "2"): "READY", ("other", "1"): "UNAVAILABLE"}
    assert infer(server, "/v2/models/iris/versions/1") == 200
    assert server.get("/v2/models/iris").json()["versions"] == ["1", "2"]

    several = server.post("/score", json={"data": ROWS})
    assert several.status_code == 400 and "iris, other" in several.json()["message"]
    assert server.get("/v2/models/nope").status_code == 404

    assert server.post("/v2/repository/models/other/unload").status_code == 200
    assert server.get("/v2/models/other/ready").status_code == 503
    assert infer(server, "/v2/models/other") == 503
    assert server.post("/v2/repository/models/other/load").status_code == 200
    assert index(server)[("other", "1")]["state"] == "READY"
    assert infer(server, "/v2/models/other") == 200
    assert [entry["name"] for entry in server.post("/v2/repository/index", json={"ready": True}).json()] == [
        "iris",
        "iris",
        "other",
    ]


def test_a_memory_budget_evicts_the_least_recently_used(serve: ServerFactory, repository: Path) -> None:
    # Each model alone is over a 1 MB budget: loading one evicts every idle other; a pinned one stays.
    server = serve(
        None, "--model_dir", str(repository), env={"SCORING_MODEL_MEMORY_MB": "1", "SCORING_MODEL_PIN": "other"}
    )
    assert index(server)[("other", "1")]["state"] == "READY"
    assert infer(server, "/v2/models/iris/versions/1") == 200
    assert infer(server, "/v2/models/iris/versions/2") == 200
    states = {key: entry["state"] for key, entry in index(server).items()}
    assert states == {("iris", "1"): "UNAVAILABLE", ("iris", "2"): "READY", ("other", "1"): "READY"}
    assert "evicted" in index(server)[("iris", "1")]["reason"]
    assert infer(server, "/v2/models/iris/versions/1") == 200  # loads again


def test_a_script_gets_its_models_from_the_repository(serve: ServerFactory, repository: Path) -> None:
    server = serve("multi_models.py", "--model_dir", str(repository), env={"SCORING_MODEL_PIN": "iris"})
    assert index(server)[("iris", "2")]["state"] == "READY"  # pinned: loaded before init()
    assert server.post("/score", json={"model": "other", "rows": ROWS}).json() == [0, 2]
    # The pinned model was loaded by the repository's own loader: the model as served without a script.
    assert server.post("/score", json={"model": "iris", "rows": ROWS, "served": True}).json() == [0, 2]
    missing = server.post("/score", json={"model": "nope", "rows": ROWS})
    assert missing.status_code == 404 and "nope" in missing.json()["message"]


def resident_mib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:"))) / 1024


def test_an_unloaded_model_gives_its_memory_back(serve: ServerFactory, tmp_path: Path) -> None:
    """Under the server's own heap policy (which keeps freed memory for the next requests), a model loaded and
    dropped on a run thread is handed back to the OS (benchmarks/unload_memory.py measures it against MLServer)."""
    import joblib  # type: ignore[import-untyped]
    from sklearn.ensemble import RandomForestClassifier  # type: ignore[import-untyped]

    rng = np.random.default_rng(0)
    for name, trees in (("warmup", 1), ("forest", 12)):
        x, y = rng.standard_normal((20_000, 8)), rng.integers(0, 10, 20_000)
        (tmp_path / "models" / name / "1").mkdir(parents=True)
        joblib.dump(
            RandomForestClassifier(trees, random_state=0).fit(x, y), tmp_path / "models" / name / "1" / "model.joblib"
        )
    server = serve(None, "--model_dir", str(tmp_path / "models"))
    pid = next(
        int(child)
        for child in Path(f"/proc/{server.process.pid}/task/{server.process.pid}/children").read_text().split()
    )
    body = {"inputs": [{"name": "input", "datatype": "FP64", "shape": [1, 8], "data": [0.0] * 8}]}
    assert server.post("/v2/models/warmup/infer", json=body).status_code == 200  # scikit-learn's own memory
    assert server.post("/v2/repository/models/warmup/unload").status_code == 200
    before = resident_mib(pid)
    assert server.post("/v2/models/forest/infer", json=body).status_code == 200
    loaded = resident_mib(pid)
    assert server.post("/v2/repository/models/forest/unload").status_code == 200
    after = resident_mib(pid)
    assert loaded - before > 40
    assert loaded - after >= 0.95 * (loaded - before), (before, loaded, after)
