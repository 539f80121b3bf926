"""A typed score.py over the Open Inference Protocol: one input tensor per run() parameter, metadata from its
inference-schema decorators, answers as /score gives them; other scripts are told why /v2 is not served."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import ServerFactory
from tests.helpers import SAMPLES

pytestmark = pytest.mark.slow

ROWS = [[0.04, 0.05, 0.06, 0.02, -0.04, -0.03, -0.04, 0.0, 0.02, -0.02], [0.0] * 10]


def test_typed_numpy_script_through_tritonclient(serve: ServerFactory) -> None:
    import tritonclient.http as triton  # type: ignore[import-untyped]

    sample = SAMPLES / "diabetes"
    server = serve(sample / "score.py", "--model_dir", str(sample / "model"), "--model_name", "diabetes")
    expected = server.post("/score", json={"data": ROWS}).json()
    metadata = server.get("/v2/models/diabetes").json()
    assert metadata["platform"] == "python"
    assert metadata["inputs"] == [{"name": "data", "datatype": "FP64", "shape": [-1, 10]}]
    assert metadata["outputs"] == [{"name": "output", "datatype": "FP64", "shape": [-1]}]
    client = triton.InferenceServerClient(url=server.url.removeprefix("http://"))
    try:
        tensor = triton.InferInput("data", [2, 10], "FP64")
        tensor.set_data_from_numpy(np.array(ROWS))
        result = client.infer("diabetes", [tensor])
        assert np.allclose(result.as_numpy("output"), expected)
        with pytest.raises(triton.InferenceServerException, match="Unknown input"):
            other = triton.InferInput("rows", [2, 10], "FP64")
            other.set_data_from_numpy(np.array(ROWS))
            client.infer("diabetes", [other])
    finally:
        client.close()


def test_scalars_defaults_and_json_values(serve: ServerFactory) -> None:
    server = serve("typed_num.py")  # run(num, color="red", request_headers=None) -> a dict with a None
    metadata = server.get("/v2/models/typed_num").json()
    assert metadata["inputs"][0] == {"name": "num", "datatype": "INT64", "shape": []}
    assert metadata["inputs"][1]["datatype"] == "BYTES"  # no schema: its value as JSON text
    body = {
        "inputs": [
            {"name": "num", "datatype": "INT64", "shape": [], "data": [4]},
            {"name": "color", "datatype": "BYTES", "shape": [1], "data": ['"blue"']},
        ]
    }
    answer = server.post("/v2/models/typed_num/infer", json=body)
    assert answer.status_code == 200, answer.text
    outputs = {output["name"]: output for output in answer.json()["outputs"]}
    assert outputs["double"]["data"] == [8] and outputs["color"]["data"] == ["blue"]
    assert outputs["test_header"]["data"] == ["null"]
    failed = server.post("/v2/models/typed_num/infer", json={"inputs": [{**body["inputs"][0], "data": [13]}]})
    assert failed.status_code == 500 and "Check the logs" in failed.json()["error"]
    missing = server.post("/v2/models/typed_num/infer", json={"inputs": body["inputs"][1:]})
    assert missing.status_code == 400 and "num" in missing.json()["error"]


def test_a_plain_script_says_why_there_is_no_v2(serve: ServerFactory) -> None:
    server = serve("returns.py")
    answer = server.get("/v2/models/returns")
    assert answer.status_code == 404 and "inference-schema" in answer.json()["error"]
    assert server.get("/v2").status_code == 200
