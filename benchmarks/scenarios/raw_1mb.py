# @rawhttp binary echo: the request's bytes back as application/octet-stream (the benchmark sends 1 MB).
from azureml.contrib.services.aml_request import rawhttp
from azureml.contrib.services.aml_response import AMLResponse


def init():
    pass


@rawhttp
def run(request):
    return AMLResponse(request.get_data(), 200, {"Content-Type": "application/octet-stream"})
