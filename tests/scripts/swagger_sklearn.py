# The seeds' "scikit-learn and Swagger" example with its decorators unchanged; the Ridge model is a dot product.
import numpy as np
from inference_schema.parameter_types.numpy_parameter_type import NumpyParameterType
from inference_schema.schema_decorators import input_schema, output_schema


def init():
    global weights
    weights = np.linspace(0.0, 1.0, 10)


input_sample = np.array([[10, 9, 8, 7, 6, 5, 4, 3, 2, 1]])
output_sample = np.array([3726.995])


@input_schema("data", NumpyParameterType(input_sample))
@output_schema(NumpyParameterType(output_sample))
def run(data):
    try:
        result = data @ weights
        return result.tolist()
    except Exception as e:
        error = str(e)
        return error
