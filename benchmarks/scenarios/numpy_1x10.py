# Typed numpy, one row of 10 features: the row sums, through inference-schema's input and output schemas.
import numpy as np
from inference_schema.parameter_types.numpy_parameter_type import NumpyParameterType
from inference_schema.schema_decorators import input_schema, output_schema


def init():
    pass


@input_schema("data", NumpyParameterType(np.zeros((1, 10))))
@output_schema(NumpyParameterType(np.zeros(1)))
def run(data):
    return data.sum(axis=1).tolist()
