# The seeds' binary-data example: bytes in, the same bytes out, with the content type they came with.
from azureml.contrib.services.aml_request import AMLRequest, rawhttp
from azureml.contrib.services.aml_response import AMLResponse
from starlette.responses import PlainTextResponse


def init():
    pass


@rawhttp
def run(request: AMLRequest):
    if request.method == "GET":
        if request.args.get("plain"):
            return PlainTextResponse("a plain starlette response", status_code=202, headers={"x-plain": "1"})
        return AMLResponse(str.encode(request.full_path), 200)
    if request.method == "POST":
        body = request.get_data(False)
        if request.args.get("upload"):
            f = request.files["image"]
            return AMLResponse(f.read(), 200, {"Content-Type": f.content_type})
        if request.args.get("cors"):
            resp = AMLResponse(body, 200)
            resp.headers["Access-Control-Allow-Origin"] = "http://www.example.com"
            return resp
        return AMLResponse(body, 200, {"Content-Type": request.content_type or "application/octet-stream"})
    return AMLResponse("bad request", 500)
