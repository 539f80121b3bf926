# The seeds' Power BI example (a DataFrame of records, variable length), plus date and nested standard types.
import datetime

import numpy as np
import pandas as pd
from inference_schema.parameter_types.numpy_parameter_type import NumpyParameterType
from inference_schema.parameter_types.pandas_parameter_type import PandasParameterType
from inference_schema.parameter_types.standard_py_parameter_type import StandardPythonParameterType
from inference_schema.schema_decorators import input_schema, output_schema

input_sample = pd.DataFrame(
    data=[{"input_name_1": 5.1, "input_name_2": "value2", "input_name_3": 3, "when": pd.Timestamp("2020-01-01")}]
)
options_sample = {"threshold": 0.5, "labels": ["a", "b"], "verbose": False, "since": datetime.datetime(2020, 1, 1)}
output_sample = np.array([0])


def init():
    pass


@input_schema("data", PandasParameterType(input_sample, enforce_shape=False))
@input_schema("options", StandardPythonParameterType(options_sample))
@output_schema(NumpyParameterType(output_sample))
def run(data, options=None):
    return [len(data)]
