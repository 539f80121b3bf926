"""The reference's own import path, `azureml_inference_server_http.api.aml_request` / `.aml_response`: ours when
that package is not installed, left to it when it is."""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import scoring_runtime
from scoring_runtime.azureml import REFERENCE_PACKAGE, aml_request, aml_response, register_azureml_aliases
from tests.conftest import ServerFactory

REQUEST = f"{REFERENCE_PACKAGE}.api.aml_request"
RESPONSE = f"{REFERENCE_PACKAGE}.api.aml_response"
IMPORTS = (
    f"from {REQUEST} import AMLRequest, rawhttp\n"
    f"from {RESPONSE} import AMLResponse\n"
    "from azureml.contrib.services.aml_response import AMLResponse as ContribResponse\n"
)


@pytest.fixture
def no_aliases() -> Iterator[None]:
    """No azureml module registered during the test; those of before it are put back after."""
    saved = {name: module for name, module in sys.modules.items() if name.startswith("azureml")}
    for name in saved:
        del sys.modules[name]
    yield
    for name in [name for name in sys.modules if name.startswith("azureml")]:
        del sys.modules[name]
    sys.modules.update(saved)


def _fake_reference(root: Path, init: str = "") -> Path:
    """A package named like the reference, with an `origin` on its AMLResponse to tell it from ours."""
    api = root / REFERENCE_PACKAGE / "api"
    api.mkdir(parents=True)
    (root / REFERENCE_PACKAGE / "__init__.py").write_text(init)
    (api / "__init__.py").write_text("")
    (api / "aml_request.py").write_text("def rawhttp(func):\n    return func\n\n\nclass AMLRequest:\n    pass\n")
    (api / "aml_response.py").write_text("class AMLResponse:\n    origin = 'fake'\n")
    return root


def test_reference_path_is_ours_without_the_package(no_aliases: None) -> None:
    assert importlib.util.find_spec(REFERENCE_PACKAGE) is None  # not installed where the tests run
    register_azureml_aliases()
    namespace: dict[str, object] = {}
    exec(IMPORTS, namespace)
    assert namespace["AMLRequest"] is scoring_runtime.AMLRequest
    assert namespace["rawhttp"] is scoring_runtime.rawhttp
    assert namespace["AMLResponse"] is scoring_runtime.AMLResponse
    assert namespace["ContribResponse"] is scoring_runtime.AMLResponse
    # As for azureml.contrib.services: only the dotted names exist, not their parent packages.
    with pytest.raises(ImportError):
        exec(f"import {REFERENCE_PACKAGE}", {})


def test_an_installed_reference_is_left_alone_and_not_imported(
    no_aliases: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Its __init__ would raise if the check ran any of it: find_spec only locates the package.
    root = _fake_reference(tmp_path, init="raise RuntimeError('the package was imported')\n")
    register_azureml_aliases()  # before the package is on the path: ours
    assert sys.modules[REQUEST] is aml_request
    monkeypatch.syspath_prepend(str(root))
    register_azureml_aliases()  # once it is installed, the earlier aliases are withdrawn too
    assert REQUEST not in sys.modules and RESPONSE not in sys.modules
    assert REFERENCE_PACKAGE not in sys.modules
    # azureml.contrib.services stays ours, as the reference registers its own over any real one.
    assert sys.modules["azureml.contrib.services.aml_response"] is aml_response


@pytest.mark.slow
def test_a_script_on_the_reference_path_is_served(serve: ServerFactory) -> None:
    server = serve("ref_binary.py")
    echoed = server.post("/score", json={"a": 1})
    assert echoed.status_code == 200 and echoed.json() == {"method": "POST", "json": {"a": 1}}  # @rawhttp took effect
    jpeg = b"\xff\xd8\xff\xe0\x00\x10JFIF" + os.urandom(4096)
    image = server.post("/score?jpeg=1", content=jpeg, headers={"Content-Type": "image/jpeg"})
    assert (image.status_code, image.content) == (200, jpeg)
    assert image.headers.get_list("content-type") == ["image/jpg"]


@pytest.mark.slow
def test_an_installed_reference_package_is_what_the_script_gets(serve: ServerFactory, tmp_path: Path) -> None:
    root = _fake_reference(tmp_path / "site")
    path = os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))
    report = serve("ref_which_modules.py", env={"PYTHONPATH": path}).post("/score", content="x").json()
    assert report == {
        "reference": "fake",
        "rawhttp": f"{REFERENCE_PACKAGE}.api.aml_request",
        "contrib": "scoring_runtime.azureml.aml_response",
    }
    without = serve("ref_which_modules.py").post("/score", content="x").json()
    assert without == {
        "reference": "scoring_runtime.azureml.aml_response",
        "rawhttp": "scoring_runtime.contract.rawhttp",
        "contrib": "scoring_runtime.azureml.aml_response",
    }
