# Stacked @input_schema layers, the mixed-type one below: inference-schema alone would still claim Swagger 2.
import numpy as np
from inference_schema.parameter_types.numpy_parameter_type import NumpyParameterType
from inference_schema.parameter_types.standard_py_parameter_type import StandardPythonParameterType
from inference_schema.schema_decorators import input_schema


def init():
    pass


@input_schema("vector", NumpyParameterType(np.array([1.0, 2.0])))
@input_schema("options", StandardPythonParameterType({"tags": [1, "x"]}))
def run(vector, options, request_headers=None):
    return {"sum": float(vector.sum()), "options": options}
