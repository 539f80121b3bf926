# A ridge regression over the 10 diabetes features, typed with inference-schema as in the Azure ML examples.
import os

import numpy as np
from inference_schema.parameter_types.numpy_parameter_type import NumpyParameterType
from inference_schema.schema_decorators import input_schema, output_schema


def init():
    global coef, intercept
    model_dir = os.getenv("AZUREML_MODEL_DIR")
    coef = np.load(os.path.join(model_dir, "coef.npy"))
    intercept = float(np.load(os.path.join(model_dir, "intercept.npy")))


input_sample = np.array([[0.04, 0.05, 0.06, 0.02, -0.04, -0.03, -0.04, 0.0, 0.02, -0.02]])
output_sample = np.array([206.1])


@input_schema("data", NumpyParameterType(input_sample))
@output_schema(NumpyParameterType(output_sample))
def run(data):
    # A list, not the array: azmlinfsrv cannot encode numpy arrays (500), and the sample runs on both servers.
    return (data @ coef + intercept).tolist()
