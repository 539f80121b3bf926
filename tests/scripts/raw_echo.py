import json

from azureml.contrib.services.aml_request import AMLRequest, rawhttp
from azureml.contrib.services.aml_response import AMLResponse


def init():
    pass


@rawhttp
def run(request: AMLRequest, color="red"):
    if request.path != "/score":
        return AMLResponse("wrong path", 500)
    summary = {
        "method": request.method,
        "args": dict(request.args),
        "body": request.get_data(as_text=True),
        "content_type": request.content_type,
        "header": request.headers.get("Test-Header"),
        "color": color,
    }
    status = int(request.args.get("status", 200))
    return AMLResponse(json.dumps(summary), status, {"Content-Type": "application/json", "x-custom": "a, b, c"})
