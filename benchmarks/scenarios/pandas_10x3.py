# Typed pandas: 10 records of 3 columns, converted to a DataFrame by inference-schema; answers one number per row.
import pandas as pd
from inference_schema.parameter_types.pandas_parameter_type import PandasParameterType
from inference_schema.schema_decorators import input_schema

sample = pd.DataFrame([{"x": 1.5, "y": 2.0, "label": "a"}])


def init():
    pass


@input_schema("data", PandasParameterType(sample, orient="records"))
def run(data):
    return (data["x"] * data["y"]).tolist()
