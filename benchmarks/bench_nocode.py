"""The no-code scenarios' parts: the iris request bodies, the answers to expect, and MLServer to compare with.

The three scenarios serve the iris classifier of sample_models/ (built by sample_models/build_models.py) with no
entry script, on the rows of its sample-request.json:
- v2_sklearn: ours against Seldon MLServer (mlserver-sklearn), both on `POST /v2/models/iris/infer`; MLServer again
  with its adaptive batching on (`mlserver-batching`, see ADAPTIVE_BATCHING), for context, not as a target;
- score_sklearn: ours on Azure ML's `/score` against the reference running the equivalent hand-written score.py;
- v2_onnx: ours serving the same classifier converted to ONNX; MLServer has no ONNX runtime, so ours on v2_sklearn
  is its only comparison, for context.

MLServer runs from benchmarks/.venv-mlserver (mlserver-requirements.txt) as the reference runs from its own venv, in
process (`parallel_workers: 0`): 1.7.1's default worker pool dies at start on Python 3.11 with uvloop 0.23 ("There is
no current event loop in thread 'MainThread'", in the worker's signal set-up), and in-process is its documented mode
for light models. Its other settings are its defaults, as the other servers run on theirs: `mlserver-batching` alone
changes the model's.
"""

from __future__ import annotations

import json
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
IRIS = ROOT / "sample_models" / "iris"
IRIS_ONNX = ROOT / "sample_models" / "iris-onnx"
IRIS_SCRIPT = HERE / "scenarios" / "iris_sklearn.py"  # what the reference runs: joblib.load, predict_proba
MODEL_NAME = "iris"
V2_PATH = f"/v2/models/{MODEL_NAME}/infer"
MLSERVER_VENV = HERE / ".venv-mlserver"
MLSERVER_REQUIREMENTS = HERE / "mlserver-requirements.txt"
MLSERVER_READY = "/v2/health/ready"  # MLServer answers 404 on `GET /`
NO_CODE = ("v2_sklearn", "score_sklearn", "v2_onnx")
# Ours scores concurrent requests for a scikit-learn model in one predict call, at most 32 (SCORING_MODEL_MAX_BATCH's
# default), and waits for nothing. MLServer's adaptive batching is off by default, and with no wait it does not batch
# at all (a max_batch_time of 0 turns it off): 1 ms is a small wait that still gets the batching it offers, as close
# as it allows to ours.
ADAPTIVE_BATCHING: dict[str, Any] = {"max_batch_size": 32, "max_batch_time": 0.001}
# The server kinds (bench_servers.py) that are MLServer, and what each adds to the model's settings.
MLSERVERS: dict[str, dict[str, Any]] = {"mlserver": {}, "mlserver-batching": ADAPTIVE_BATCHING}


def iris_rows() -> list[list[float]]:
    rows: list[list[float]] = json.loads((IRIS / "sample-request.json").read_text())["data"]
    return rows


def v2_body(rows: list[list[float]], datatype: str, output: str) -> bytes:
    """A V2 inference request: one [N, 4] tensor, flat in row-major order, asking for one output by name."""
    flat = [value for row in rows for value in row]
    tensor = {"name": "input", "shape": [len(rows), len(rows[0])], "datatype": datatype, "data": flat}
    return json.dumps({"inputs": [tensor], "outputs": [{"name": output}]}).encode()


def score_body(rows: list[list[float]]) -> bytes:
    """Azure ML's no-code /score body, with no `method`: a classifier answers predict_proba."""
    return json.dumps({"data": rows}).encode()


def body_rows(body: bytes) -> list[list[float]]:
    """The rows a /score or V2 body carries."""
    parsed = json.loads(body)
    if "data" in parsed:
        rows: list[list[float]] = parsed["data"]
        return rows
    tensor = parsed["inputs"][0]
    width = tensor["shape"][1]
    return [tensor["data"][start : start + width] for start in range(0, len(tensor["data"]), width)]


@cache
def _iris_model() -> Any:
    import joblib  # type: ignore[import-untyped]  # only where the answers are checked: the main venv has it

    return joblib.load(IRIS / "model" / "model.joblib")


def expected_labels(body: bytes) -> bytes:
    """What a V2 body asking for the predicted class should answer: scikit-learn's predict on its rows."""
    return json.dumps(_iris_model().predict(body_rows(body)).tolist()).encode()


def expected_probabilities(body: bytes) -> bytes:
    """What a /score body with no method should answer: scikit-learn's predict_proba on its rows."""
    return json.dumps(_iris_model().predict_proba(body_rows(body)).tolist()).encode()


def same_labels(answer: bytes, expected: bytes) -> bool:
    """A V2 answer's first output holds the expected labels, whatever its shape: [N] (ours) or [N, 1] (MLServer)."""
    try:
        data = json.loads(answer)["outputs"][0]["data"]
    except (ValueError, KeyError, IndexError, TypeError):
        return False
    flat = [value for item in data for value in (item if isinstance(item, list) else [item])]
    return bool(flat == json.loads(expected))


def same_probabilities(answer: bytes, expected: bytes, tolerance: float = 1e-9) -> bool:
    """A /score answer holds the expected probabilities, row by row, to within `tolerance`."""
    try:
        got, wanted = json.loads(answer), json.loads(expected)
        return len(got) == len(wanted) and all(
            len(a) == len(b) and all(abs(x - y) <= tolerance for x, y in zip(a, b, strict=True))
            for a, b in zip(got, wanted, strict=True)
        )
    except (ValueError, TypeError):
        return False


def mlserver_settings(http_port: int, grpc_port: int, metrics_port: int, scratch: Path) -> dict[str, Any]:
    """MLServer's settings.json: its defaults but for the ports (all on 127.0.0.1), where it writes its metrics
    files, and in-process inference (see the module's docstring). gRPC cannot be switched off: it gets a port."""
    return {
        "host": "127.0.0.1",
        "http_port": http_port,
        "grpc_port": grpc_port,
        "metrics_port": metrics_port,
        "metrics_dir": str(scratch / "metrics"),
        "parallel_workers": 0,
    }


def mlserver_model_settings(model_file: Path, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The model's model-settings.json: the scikit-learn runtime on the joblib file, named as in our V2 path, with
    `extra` (a kind's of MLSERVERS)."""
    return {
        "name": MODEL_NAME,
        "implementation": "mlserver_sklearn.SKLearnModel",
        "parameters": {"uri": str(model_file)},
        **(extra or {}),
    }


def mlserver_command(model_dir: Path, ports: tuple[int, int, int], scratch: Path, kind: str = "mlserver") -> list[str]:
    """Writes the settings of MLServer's `kind` (one of MLSERVERS) into `scratch`; the command that serves them.

    The model's settings sit in a folder named after the model, which MLServer expects (it warns otherwise)."""
    (scratch / "settings.json").write_text(json.dumps(mlserver_settings(*ports, scratch)))
    model_folder = scratch / MODEL_NAME
    model_folder.mkdir(exist_ok=True)
    model_settings = mlserver_model_settings(model_dir / "model.joblib", MLSERVERS[kind])
    (model_folder / "model-settings.json").write_text(json.dumps(model_settings))
    return [str(MLSERVER_VENV / "bin" / "mlserver"), "start", str(scratch)]


def mlserver_versions() -> dict[str, str]:
    """The versions that MLServer's venv runs, for the results' header."""
    probe = "from importlib.metadata import version as v; print(v('mlserver'), v('scikit-learn'), v('uvicorn'))"
    python = MLSERVER_VENV / "bin" / "python"
    mlserver, sklearn, uvicorn = subprocess.run(
        [str(python), "-c", probe], capture_output=True, text=True, check=True
    ).stdout.split()
    return {"mlserver": mlserver, "mlserver scikit-learn": sklearn, "mlserver uvicorn": uvicorn}
