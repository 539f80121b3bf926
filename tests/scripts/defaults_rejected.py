from inference_schema.parameter_types.standard_py_parameter_type import StandardPythonParameterType
from inference_schema.schema_decorators import input_schema


def init():
    pass


# The default is not an int, which the schema wants: the reference fails every request that leaves `factor` out.
@input_schema("num", StandardPythonParameterType(5))
@input_schema("factor", StandardPythonParameterType(10))
def run(num, factor=None):
    return [num, factor]
