"""The `@rawhttp` contract: `rawhttp`, the request object a raw `run()` gets, and `AMLResponse`.

Scripts written for the reference import these from `azureml.contrib.services.aml_request` /
`azureml.contrib.services.aml_response`, or from the reference's own `azureml_inference_server_http.api.aml_request` /
`.aml_response`; `register_azureml_aliases` makes those names resolve to our modules without any azureml package
installed.
"""

from __future__ import annotations

import sys
from types import ModuleType

from scoring_runtime.azureml import aml_request, aml_response
from scoring_runtime.azureml.aml_request import AMLRequest
from scoring_runtime.azureml.aml_response import AMLResponse
from scoring_runtime.config import missing_module
from scoring_runtime.contract.rawhttp import rawhttp

__all__ = ["AMLRequest", "AMLResponse", "rawhttp", "register_azureml_aliases"]

REFERENCE_PACKAGE = "azureml_inference_server_http"

# The reference registers these two itself, over any real azureml.contrib.services (the SDK v1's Flask-based one).
_CONTRIB_ALIASES: dict[str, ModuleType] = {
    "azureml.contrib.services.aml_request": aml_request,
    "azureml.contrib.services.aml_response": aml_response,
}
# The reference's own modules: ours stand in for them only where the reference is not installed.
_REFERENCE_ALIASES: dict[str, ModuleType] = {
    f"{REFERENCE_PACKAGE}.api.aml_request": aml_request,
    f"{REFERENCE_PACKAGE}.api.aml_response": aml_response,
}


def register_azureml_aliases() -> None:
    """Make `from azureml.contrib.services.aml_request import rawhttp` (and aml_response), and the same from
    `azureml_inference_server_http.api.aml_request` / `.aml_response`, resolve to our modules.

    As in the reference, only `from <dotted name> import ...` works this way; the parent packages do not exist. The
    `azureml_inference_server_http` names are left to that package when it is installed.
    """
    sys.modules.update(_CONTRIB_ALIASES)
    if missing_module((REFERENCE_PACKAGE,)) is None:
        for name, module in _REFERENCE_ALIASES.items():
            if sys.modules.get(name) is module:  # our alias from an earlier call, made before the package was there
                del sys.modules[name]
    else:
        sys.modules.update(_REFERENCE_ALIASES)
