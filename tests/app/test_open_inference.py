"""The Open Inference Protocol's routes in-process (Starlette's TestClient, the lifespan run): authentication,
TensorFlow Serving's route for other frameworks, the repository extension without a multi-model folder, bodies."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from scoring_runtime import create_app
from tests.models.samples import build_iris

BODY = {"inputs": [{"name": "input", "datatype": "FP64", "shape": [1, 4], "data": [5.1, 3.5, 1.4, 0.2]}]}


@pytest.fixture(scope="module")
def iris_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # The samples' iris classifier fitted with the installed scikit-learn: the committed sample_models/iris pickle is
    # only good for the release that saved it.
    folder = tmp_path_factory.mktemp("iris") / "model"
    build_iris(folder)
    return folder


@pytest.fixture
def iris(iris_dir: Path) -> Iterator[TestClient]:
    # Per test: the app exports its settings to os.environ, which the autouse fixture restores after each test.
    with TestClient(create_app(model_dir=iris_dir, model_name="iris", auth_keys="k1")) as client:
        yield client


def test_model_routes_need_the_key_and_probes_do_not(iris: TestClient) -> None:
    refused = iris.post("/v2/models/iris/infer", json=BODY)
    assert refused.status_code == 401 and "error" in refused.json()
    assert refused.headers["www-authenticate"].startswith("Bearer")
    assert iris.get("/v2/models/iris", headers={"Authorization": "Bearer nope"}).status_code == 401
    key = {"Authorization": "Bearer k1"}
    assert iris.post("/v2/models/iris/infer", json=BODY, headers=key).json()["outputs"][0]["data"] == [0]
    assert iris.get("/v2/health/ready").status_code == 200 and iris.get("/v2/health/live").status_code == 200


def test_tensorflow_serving_route_names_the_route_for_other_frameworks(iris: TestClient) -> None:
    answer = iris.post(
        "/v1/models/iris:predict", json={"instances": [[1, 2, 3, 4]]}, headers={"Authorization": "Bearer k1"}
    )
    assert answer.status_code == 404
    assert answer.json() == {"error": "Model 'iris' is a sklearn model: use /v2/models/iris/infer"}


def test_the_repository_extension_needs_a_multi_model_folder(iris: TestClient) -> None:
    key = {"Authorization": "Bearer k1"}
    for path in ("/v2/repository/index", "/v2/repository/models/iris/load", "/v2/repository/models/iris/unload"):
        answer = iris.post(path, headers=key)
        assert answer.status_code == 404 and "No multi-model folder" in answer.json()["error"], path


def test_repository_index_bodies(tmp_path: Path, iris_dir: Path) -> None:
    root = tmp_path / "models" / "iris" / "1"
    root.mkdir(parents=True)
    (root / "model.joblib").write_bytes((iris_dir / "model.joblib").read_bytes())
    with TestClient(create_app(model_dir=tmp_path / "models", max_request_bytes=64)) as client:
        assert client.post("/v2/repository/index", json={"ready": True}).json() == []
        assert client.post("/v2/repository/index", content=b"").json()[0]["state"] == "UNAVAILABLE"
        listed = client.post("/v2/repository/index", json=["ready"])
        assert listed.status_code == 400 and "JSON object" in listed.json()["error"]
        assert client.post("/v2/repository/index", content=b"{" + b" " * 100 + b"}").status_code == 413
        assert client.post("/v2/repository/models/nope/load").status_code == 404
        # The only model of a multi-model folder also serves /score.
        assert client.post("/score", json={"data": [[5.1, 3.5, 1.4, 0.2]]}).json()[0][0] > 0.9


def test_a_header_length_must_be_a_number(iris: TestClient) -> None:
    headers = {"Authorization": "Bearer k1", "Inference-Header-Content-Length": "many"}
    answer = iris.post("/v2/models/iris/infer", json=BODY, headers=headers)
    assert answer.status_code == 400 and "Inference-Header-Content-Length" in answer.json()["error"]
