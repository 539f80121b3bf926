# Written against the reference's own import path, as its sample and test scripts are: the binary-data sample
# (bytes in, a JPEG out with `resp.mimetype = "image/jpg"`) and a response changed in Flask's ways after it was built.
from azureml_inference_server_http.api.aml_request import AMLRequest, rawhttp
from azureml_inference_server_http.api.aml_response import AMLResponse


def init():
    pass


@rawhttp
def run(request: AMLRequest):
    if request.args.get("jpeg"):
        resp = AMLResponse(request.get_data(False), 200)
        resp.mimetype = "image/jpg"
        return resp
    if request.args.get("changed"):
        resp = AMLResponse("short", 200, {"X-Built": "1"})
        resp.headers["Access-Control-Allow-Origin"] = "http://www.example.com"
        resp.headers.add("X-Added", "a")
        resp.headers.add("x-added", "b")
        resp.headers.set("X-Count", 3)
        del resp.headers["X-Built"]
        resp.status = "201 CREATED"
        resp.set_cookie("session", "abc", httponly=True)
        resp.data = "a longer body than the first"
        return resp
    if request.args.get("stream"):
        resp = AMLResponse((piece for piece in ["chunk1 ", "chunk2"]), 200)
        resp.content_type = "text/plain"
        return resp
    return AMLResponse({"method": request.method, "json": request.get_json(silent=True)}, 200, json_str=True)
