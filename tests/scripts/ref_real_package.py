# Run where the reference package itself is installed, as in Azure ML's base images: its @rawhttp (which sets a flag
# in its module and marks nothing on run()) and its AMLResponse (a flask.Response), changed after construction.
import flask
from azureml_inference_server_http.api.aml_request import AMLRequest, rawhttp
from azureml_inference_server_http.api.aml_response import AMLResponse


def init():
    pass


@rawhttp
def run(request: AMLRequest):
    kind = request.args.get("kind")
    if kind == "image":
        resp = AMLResponse(request.get_data(), 200, {"X-Tags": "a, b"})
        resp.mimetype = "image/png"
        resp.set_cookie("session", "abc", httponly=True)
        resp.set_cookie("theme", "dark", samesite="Lax")
        return resp
    if kind == "stream":
        return AMLResponse((piece for piece in ["chunk1 ", "chunk2"]), 200, {"Content-Type": "text/plain"})
    if kind == "failed":
        return AMLResponse("overloaded", 503)
    if kind == "flask":
        return flask.Response("plain flask", status="202 ACCEPTED", mimetype="text/plain")
    return AMLResponse(
        {
            "method": request.method,
            "json": request.get_json(silent=True),
            "request": type(request).__module__,
            "response": [f"{cls.__module__}.{cls.__qualname__}" for cls in AMLResponse.__mro__],
        },
        200,
        json_str=True,
    )
