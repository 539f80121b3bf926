import os
import pickle
import sys


class Prediction:
    def __init__(self, value):
        self.value = value


def init():
    pass


def run(data):
    restored = pickle.loads(pickle.dumps(Prediction(5)))
    names = ["AZUREML_MODEL_DIR", "AML_APP_ROOT", "AZUREML_ENTRY_SCRIPT"]
    return {
        "env": {name: os.environ.get(name) for name in names},
        "module": __name__,
        "registered": sys.modules.get(__name__) is not None,
        "pickled": restored.value,
    }
