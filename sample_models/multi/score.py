# Two deployed models, one of them in two versions, found by name with get_model_path.
import json

from scoring_runtime import get_model_path


def _load(name, version=None):
    with open(f"{get_model_path(name, version)}/model.json") as f:
        return json.load(f)


def init():
    global first, second, second_v1
    first = _load("first")
    second = _load("second")  # highest version: 2
    second_v1 = _load("second", 1)


def run(data):
    x = json.loads(data)["x"]
    return {
        "first": x * first["factor"],
        "second": x * second["factor"],
        "second_v1": x * second_v1["factor"],
        "versions": {"first": first["version"], "second": second["version"]},
    }
