# Reports what a Flask-era raw run() reads from its request, attribute by attribute.

from azureml.contrib.services.aml_request import AMLRequest, rawhttp
from azureml.contrib.services.aml_response import AMLResponse


def init():
    pass


@rawhttp
def run(request: AMLRequest):
    report = {
        "method": request.method,
        "path": request.path,
        "full_path": request.full_path,
        "url": request.url,
        "args": request.args.to_dict(flat=False),
        "n": request.args.get("n", type=int),
        "bad_n": request.args.get("word", -1, type=int),
        "headers": dict(request.headers),
        "header_pairs": [name for name, _ in request.headers],
        "test_header": request.headers.get("test-header"),
        "data_len": len(request.data),
        "text": request.get_data(as_text=True)[:40],
        "positional_cache_flag": isinstance(request.get_data(False), bytes),
        "json": request.get_json(silent=True),
        "form": request.form.to_dict(flat=False),
        "files": {
            name: {"filename": f.filename, "content_type": f.content_type, "size": len(f.read())}
            for name, f in request.files.items()
        },
        "content_type": request.content_type,
        "mimetype": request.mimetype,
        "query_string": request.query_string.decode(),
        "remote_addr": request.remote_addr,
        "is_json": request.is_json,
        "cookies": request.cookies,
        "values": request.values.to_dict(),
    }
    if request.method == "HEAD":
        return AMLResponse(None, 204, {"x-method": "HEAD"})
    if request.args.get("strict_json"):
        report["json"] = request.json  # raises on a body that is not JSON: run() fails, as under the reference
    return AMLResponse(report, 200, json_str=True)
