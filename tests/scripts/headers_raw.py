from azureml.contrib.services.aml_request import rawhttp


def init():
    pass


@rawhttp
def run(request):
    return {
        "get": request.headers.get("X-Dup"),
        "getlist": request.headers.getlist("x-dup"),
        "pairs": [list(pair) for pair in request.headers if pair[0] == "X-Dup"],
    }
