"""The `@rawhttp` contract: `rawhttp`, the request object a raw `run()` gets, and `AMLResponse`.

Scripts written for the reference import these from `azureml.contrib.services.aml_request` and
`azureml.contrib.services.aml_response`; `register_azureml_aliases` makes those names resolve to our modules without
any azureml package installed.
"""

from __future__ import annotations

import sys

from scoring_runtime.azureml import aml_request, aml_response
from scoring_runtime.azureml.aml_request import AMLRequest
from scoring_runtime.azureml.aml_response import AMLResponse
from scoring_runtime.contract.rawhttp import rawhttp

__all__ = ["AMLRequest", "AMLResponse", "rawhttp", "register_azureml_aliases"]


def register_azureml_aliases() -> None:
    """Make `from azureml.contrib.services.aml_request import rawhttp` (and aml_response) resolve to our modules.

    As in the reference, only `from <dotted name> import ...` works this way; the parent packages do not exist.
    """
    sys.modules["azureml.contrib.services.aml_request"] = aml_request
    sys.modules["azureml.contrib.services.aml_response"] = aml_response
