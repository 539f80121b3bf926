# Typed numpy, 1000 rows of 10 features (about 100 KB of JSON): the row sums, through inference-schema's schemas.
import numpy as np
from inference_schema.parameter_types.numpy_parameter_type import NumpyParameterType
from inference_schema.schema_decorators import input_schema, output_schema


def init():
    pass


# The samples keep the swagger document small; the row count is free, the 10 columns are checked.
@input_schema("data", NumpyParameterType(np.zeros((1, 10)), enforce_shape=False))
@output_schema(NumpyParameterType(np.zeros(1), enforce_shape=False))
def run(data):
    return data.sum(axis=1).tolist()
