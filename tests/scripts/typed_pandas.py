import pandas as pd
from inference_schema.parameter_types.pandas_parameter_type import PandasParameterType
from inference_schema.schema_decorators import input_schema

sample = pd.DataFrame([{"a": 1.5, "b": 2, "name": "x"}])


def init():
    pass


@input_schema("frame", PandasParameterType(sample))
def run(frame):
    frame["total"] = frame["a"] + frame["b"]
    return frame
