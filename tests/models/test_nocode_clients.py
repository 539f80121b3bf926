"""The Open Inference Protocol as real clients and the machine-readable specification see it: kserve's
InferenceRESTClient (in its own venv), and every route of kserve/open-inference-protocol's REST spec answered as
its schemas say."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.conftest import ServerFactory
from tests.helpers import ROOT
from tests.models import oip_spec
from tests.models.test_nocode_server import ROWS, iris_model

pytestmark = pytest.mark.slow

KSERVE_PYTHON = ROOT / ".venv-kserve" / "bin" / "python"


@pytest.fixture(scope="module")
def versioned(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    """A registered model as Azure ML lays it out: `<name>/<version>/`, served as iris version 1."""
    folder = tmp_path_factory.mktemp("azureml-models") / "iris" / "1"
    return folder, iris_model(folder)


def test_kserve_rest_client(serve: ServerFactory, versioned: tuple[Path, Any]) -> None:
    if not KSERVE_PYTHON.exists():
        pytest.skip("kserve's client venv is missing: make kserve-client (make test builds it)")
    folder, model = versioned
    server = serve(None, "--model_dir", str(folder))
    command = [
        str(KSERVE_PYTHON),
        str(ROOT / "tests" / "data" / "kserve_client.py"),
        server.url,
        "iris",
        json.dumps(ROWS),
    ]
    found = json.loads(subprocess.run(command, capture_output=True, text=True, check=True, timeout=120).stdout)
    assert found["live"] and found["ready"] and found["model_ready"]
    for binary in (True, False):
        answer = found[f"binary={binary}"]
        assert answer["id"] == f"binary-{binary}"
        assert answer["outputs"] == {"predict": model.predict(ROWS).tolist()}


def test_every_spec_route_answers_as_the_spec_says(serve: ServerFactory, versioned: tuple[Path, Any]) -> None:
    folder, model = versioned
    server = serve(None, "--model_dir", str(folder))
    request = {
        "id": "42",
        "inputs": [{"name": "input", "shape": [2, 4], "datatype": "FP64", "data": np.ravel(ROWS).tolist()}],
        "outputs": [{"name": "predict_proba"}],
    }
    oip_spec.validate("inference_request", request)
    values = {"{model_name}": "iris", "{model_version}": "1"}
    for template, methods in oip_spec.paths().items():
        path = template
        for name, value in values.items():
            path = path.replace(name, value)
        for method in methods:
            answer = server.request(method, path, json=request if method == "POST" else None)
            assert answer.status_code == 200, (method, path, answer.text)
            body = answer.json()
            if path.endswith("/infer"):
                oip_spec.validate("inference_response", body)
                assert body["id"] == "42" and body["model_version"] == "1"
                assert np.allclose(body["outputs"][0]["data"], np.ravel(model.predict_proba(ROWS)))
            elif path.startswith("/v2/models/") and not path.endswith("/ready"):
                oip_spec.validate("metadata_model_response", body)
                assert body["versions"] == ["1"]
            elif path == "/v2/":
                oip_spec.validate("metadata_server_response", body)
    missing = server.get("/v2/models/iris/versions/2")
    assert missing.status_code == 404
    oip_spec.validate("metadata_model_error_response", missing.json())
    bad = server.post("/v2/models/iris/versions/1/infer", json={"inputs": [{"name": "input"}]})
    assert bad.status_code == 400
    oip_spec.validate("inference_error_response", bad.json())
