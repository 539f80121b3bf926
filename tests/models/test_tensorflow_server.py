"""A TensorFlow SavedModel served by the real server without a script: TensorFlow Serving's predict API on /score
and on /v1/models/{name}:predict, the Open Inference Protocol, and its Swagger document. Runs where tensorflow is
installed (make test-tensorflow)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.conftest import ServerFactory

tf: Any = pytest.importorskip("tensorflow")

from tests.models.test_tensorflow_model import BIAS, ROWS, WEIGHTS, _Toy  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Azure ML's layout for a registered model: `<name>/<version>/`, here the SavedModel's own folder."""
    folder = tmp_path_factory.mktemp("azureml-models") / "toy" / "3"
    module = _Toy()
    tf.saved_model.save(module, str(folder), signatures={"serving_default": module.classify, "upper": module.upper})
    return folder


def test_predict_score_and_v2(serve: ServerFactory, toy: Path) -> None:
    server = serve(None, "--model_dir", str(toy), "--model_framework", "TensorFlow")
    scores = np.array(ROWS) @ WEIGHTS + BIAS
    labels = np.argmax(scores, axis=1).tolist()
    for path in ("/score", "/v1/models/toy:predict", "/v1/models/toy/versions/3:predict"):
        answer = server.post(path, json={"instances": ROWS})
        assert answer.status_code == 200, (path, answer.text)
        predictions = answer.json()["predictions"]
        assert [row["label"] for row in predictions] == labels
        assert np.allclose([row["scores"] for row in predictions], scores)
    columns = server.post("/score", json={"signature_name": "upper", "inputs": ["a", "b"]})
    assert columns.json() == {"outputs": ["A", "B"]}
    bad = server.post("/v1/models/toy:predict", json={"instances": [[1, 2, 3]]})
    assert bad.status_code == 400 and "x" in bad.json()["error"]

    metadata = server.get("/v2/models/toy/versions/3").json()
    assert metadata["platform"] == "tensorflow_savedmodel"
    assert metadata["inputs"] == [{"name": "x", "datatype": "FP32", "shape": [-1, 4]}]
    body = {
        "inputs": [{"name": "x", "datatype": "FP32", "shape": [2, 4], "data": ROWS}],
        "outputs": [{"name": "label"}],
    }
    inferred = server.post("/v2/models/toy/infer", json=body).json()
    assert inferred["outputs"][0]["data"] == labels

    swagger = server.get("/swagger.json").json()
    example = swagger["definitions"]["ServiceInput"]["example"]
    assert server.post("/score", json=example).status_code == 200
