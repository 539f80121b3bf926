import asyncio

from inference_schema.parameter_types.standard_py_parameter_type import StandardPythonParameterType
from inference_schema.schema_decorators import input_schema


def init():
    pass


@input_schema("seconds", StandardPythonParameterType(0.5))
async def run(seconds):
    await asyncio.sleep(seconds)
    return {"slept": seconds}
