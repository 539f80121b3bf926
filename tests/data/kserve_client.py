"""Run by the kserve venv's Python (.venv-kserve, `make kserve-client`): kserve's own InferenceRESTClient, protocol v2,
against a server the test started. Prints what it got as one JSON object; tests/models/test_nocode_clients.py checks it.

Usage: kserve_client.py BASE_URL MODEL_NAME ROWS_JSON
"""

import asyncio
import json
import sys

import numpy as np
from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig


async def main(base_url: str, model: str, rows: list) -> dict:
    client = InferenceRESTClient(RESTConfig(protocol="v2", retries=0, timeout=30))
    try:
        found = {
            "live": await client.is_server_live(base_url),
            "ready": await client.is_server_ready(base_url),
            "model_ready": await client.is_model_ready(base_url, model),
        }
        for binary in (True, False):
            tensor = InferInput("input", [len(rows), len(rows[0])], "FP64")
            tensor.set_data_from_numpy(np.array(rows, dtype=np.float64), binary_data=binary)
            request = InferRequest(model_name=model, infer_inputs=[tensor], request_id=f"binary-{binary}")
            response = await client.infer(base_url, request, model_name=model)
            found[f"binary={binary}"] = {
                "id": response.id,
                "outputs": {output.name: output.as_numpy().tolist() for output in response.outputs},
            }
        return found
    finally:
        await client.close()


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(sys.argv[1], sys.argv[2], json.loads(sys.argv[3])))))
