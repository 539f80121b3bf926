from inference_schema.parameter_types.standard_py_parameter_type import StandardPythonParameterType
from inference_schema.schema_decorators import input_schema

from scoring_runtime import rawhttp


def init():
    pass


@rawhttp
@input_schema("num", StandardPythonParameterType(1))
def run(num):
    return num
