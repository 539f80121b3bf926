from inference_schema.parameter_types.standard_py_parameter_type import StandardPythonParameterType
from inference_schema.schema_decorators import input_schema


def init():
    pass


@input_schema("num", StandardPythonParameterType(10))
def run(num, color="red", request_headers=None):
    if num == 13:
        raise ValueError("unlucky number")  # a failure in user code: 500, not 400
    return {"double": num * 2, "color": color, "test_header": (request_headers or {}).get("Test-Header")}
