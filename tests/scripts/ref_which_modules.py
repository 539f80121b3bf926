# Which modules the reference's import path and the azureml.contrib.services path give this script.
from azureml.contrib.services.aml_response import AMLResponse as ContribResponse
from azureml_inference_server_http.api.aml_request import rawhttp
from azureml_inference_server_http.api.aml_response import AMLResponse


def init():
    pass


def run(data):
    return {
        "reference": getattr(AMLResponse, "origin", AMLResponse.__module__),
        "rawhttp": rawhttp.__module__,
        "contrib": ContribResponse.__module__,
    }
