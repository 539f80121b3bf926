# @rawhttp on a helper only: like the reference, run() still gets the request object.
from scoring_runtime import rawhttp


def init():
    pass


@rawhttp
def helper(request):
    return request


def run(request):
    return {"method": request.method, "body": request.get_data(as_text=True)}
