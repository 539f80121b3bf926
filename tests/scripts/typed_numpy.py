import functools

import numpy as np
from inference_schema.parameter_types.numpy_parameter_type import NumpyParameterType
from inference_schema.schema_decorators import input_schema, output_schema


def init():
    pass


def logged(func):
    # A user decorator under the schema decorators: conversion errors must still be told from user errors.
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        return func(*args, **kwargs)

    return wrapper


@input_schema("data", NumpyParameterType(np.array([[1.0, 2.0, 3.0]])))
@output_schema(NumpyParameterType(np.array([6.0])))
@logged
def run(data):
    if data[0, 0] < 0:
        np.array([[1, 2], [3]], dtype=float)  # user code hitting the same numpy error a bad input would: a 500
    return data.sum(axis=1)
