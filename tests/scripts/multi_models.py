import json

import joblib

from scoring_runtime import leased_model, load_model


def init():
    pass


def run(data):
    request = json.loads(data)
    if request.get("served"):  # without a loader: the model as it is served without a script
        return load_model(request["model"]).score({"data": request["rows"], "method": "predict"}).value
    with leased_model(request["model"], loader=lambda folder: joblib.load(folder / "model.joblib")) as model:
        return model.predict(request["rows"]).tolist()
