# A decorator of the user's above @input_schema: it sees the raw JSON value, so inference-schema keeps converting.
import functools

import numpy as np
from inference_schema.parameter_types.numpy_parameter_type import NumpyParameterType
from inference_schema.schema_decorators import input_schema


def init():
    pass


def counted(func):
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        return func(*args, **kwargs)

    return wrapper


@counted
@input_schema("data", NumpyParameterType(np.array([[1.0, 2.0]])))
def run(data):
    return data.sum(axis=1)
