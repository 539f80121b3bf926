# The no-code iris classifier written by hand, as Azure ML users did before no-code serving: the model loaded once
# in init(), predict_proba on the rows of {"data": [[...]]} in run(), the plain list as the answer.
import json
import os

import joblib
import numpy as np


def init():
    global model
    model = joblib.load(os.path.join(os.getenv("AZUREML_MODEL_DIR"), "model.joblib"))


def run(raw_data):
    return model.predict_proba(np.asarray(json.loads(raw_data)["data"], dtype=float)).tolist()
