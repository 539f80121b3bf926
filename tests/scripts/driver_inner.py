from inference_schema.parameter_types.standard_py_parameter_type import StandardPythonParameterType
from inference_schema.schema_decorators import input_schema

inner_init_called = False


def init():
    global inner_init_called
    inner_init_called = True


@input_schema("num", StandardPythonParameterType(10))
def run(num):
    return num * 2
