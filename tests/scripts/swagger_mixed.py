# A sample with a mixed-type list: Swagger 2 cannot describe it, so only OpenAPI 3 documents are served.
from inference_schema.parameter_types.standard_py_parameter_type import StandardPythonParameterType
from inference_schema.schema_decorators import input_schema


def init():
    pass


@input_schema("data", StandardPythonParameterType({"a": [1, "x", 2.5]}))
def run(data):
    return data
