"""/swagger.json: the reference's documents for the same script, versions, user files, prefixes, validity."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from openapi_spec_validator import validate

from scoring_runtime.app.lifecycle import load_user_script
from scoring_runtime.app.swagger import ServiceInfo, build
from scoring_runtime.config import load_settings
from scoring_runtime.errors import ScriptLoadError
from tests.conftest import ServerFactory
from tests.helpers import ROOT, SAMPLES, SCRIPTS

REFERENCE = ROOT / "tests" / "data" / "reference"
ALL_VERSIONS = ["2", "2.0", "3", "3.0", "3.1"]


def _version_parameter(document: dict[str, Any]) -> dict[str, Any]:
    path = next(key for key in document["paths"] if key.endswith("/swagger.json"))
    parameter: dict[str, Any] = document["paths"][path]["get"]["parameters"][0]
    return parameter


def _as_we_document_it(reference: dict[str, Any], served_versions: list[str]) -> bytes:
    """The reference's document with our one intended change: the `version` enum lists every served version."""
    parameter = _version_parameter(reference)
    target = parameter if "enum" in parameter else parameter["schema"]
    assert (target["type"], target["enum"]) == ("integer", [2, 3])  # the reference's stale enum
    target["type"], target["enum"] = "string", served_versions
    return json.dumps(reference).encode()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("script", "prefix", "reference"),
    [
        ("swagger_numpy.py", None, "decorated"),
        ("returns.py", None, "undecorated"),
        ("swagger_numpy.py", "test", "decorated_prefix"),
    ],
)
def test_documents_equal_the_references(serve: ServerFactory, script: str, prefix: str | None, reference: str) -> None:
    server = serve(script, env={"SERVICE_PATH_PREFIX": prefix} if prefix else {})
    for version, aliases in {"2": ["", "?version=2", "?version=2.0"], "3": ["?version=3", "?version=3.0"]}.items():
        expected_bytes = (REFERENCE / f"{reference}_v{version}.json").read_bytes()
        expected = _as_we_document_it(json.loads(expected_bytes), ALL_VERSIONS)
        for query in aliases:
            response = server.get(f"/swagger.json{query}")
            assert response.status_code == 200, query
            assert response.headers["content-type"] == "application/json"
            assert response.headers["x-ms-run-function-failed"] == "False"
            # Same content, same key order, same serialisation.
            assert response.content == expected, query
    if prefix is None:
        v31 = json.loads((REFERENCE / f"{reference}_v3.1.json").read_bytes())
        assert server.get("/swagger.json?version=3.1").content == _as_we_document_it(v31, ALL_VERSIONS)


@pytest.mark.slow
def test_the_seeds_sklearn_example_gives_the_seeds_document(serve: ServerFactory) -> None:
    server = serve("swagger_sklearn.py", env={"SERVICE_NAME": "myservice"})
    ours = server.get("/swagger.json").json()
    seeds = json.loads((ROOT / "tests" / "data" / "seeds_sklearn_swagger2.json").read_bytes())
    # The seeds' document was printed by an older generation of the platform. Where azmlinfsrv 1.5.1 (which we
    # match) writes something else, the difference is listed here and explained in docs/compatibility.md.
    newer_wording = "API specification for the Azure Machine Learning service myservice"
    assert seeds["info"].pop("description") == "API specification for Azure Machine Learning myservice"
    assert ours["info"].pop("description") == newer_wording
    assert seeds["definitions"]["ErrorResponse"]["properties"].pop("status_code") == {
        "type": "integer",
        "format": "int32",
    }
    assert ours["paths"].pop("/swagger.json")["get"]["operationId"] == "GetSwaggerSpec"
    assert ours["definitions"]["ServiceInput"]["properties"]["data"].pop("format") == "numpy.ndarray"
    assert ours["definitions"]["ServiceOutput"].pop("format") == "numpy.ndarray"
    assert ours == seeds
    assert list(ours) == list(seeds)


@pytest.mark.slow
def test_versions_a_script_cannot_support_and_invalid_versions(serve: ServerFactory) -> None:
    server = serve("swagger_mixed.py")
    for query, version in [("", "2"), ("?version=2", "2"), ("?version=2.0", "2.0")]:
        response = server.get(f"/swagger.json{query}")
        assert (response.status_code, response.json()) == (
            404,
            {
                "message": f"Swagger version [{version}] is not supported for the scoring script. "
                "Supported swagger versions: [3, 3.1]."
            },
        )
    for version in ["3.0a", "", "4"]:
        response = server.get(f"/swagger.json?version={version}")
        assert (response.status_code, response.json()) == (
            404,
            {"message": f"Swagger version [{version}] is not valid. Supported versions: [3, 3.1]."},
        )
        assert response.headers["x-ms-run-function-failed"] == "False"
    document = server.get("/swagger.json?version=3&version=2").json()  # the first `version` counts
    assert document["openapi"] == "3.0.3"
    assert _version_parameter(document)["schema"] == {"type": "string", "enum": ["3", "3.0", "3.1"]}
    assert "Swaggers are prepared for versions [3, 3.1] and skipped for versions [2]." in server.log()


def test_stacked_schemas_with_a_mixed_list_are_not_offered_as_swagger_2() -> None:
    swaggers = _build("swagger_stacked.py")
    assert swaggers.versions == ("3", "3.1")
    properties = json.loads(swaggers.documents["3"])["components"]["schemas"]["ServiceInput"]["properties"]
    assert list(properties) == ["vector", "options", "request_headers"]  # every argument, as the reference lists


@pytest.mark.slow
def test_user_swagger_files_override_and_broken_ones_stop_start_up(serve: ServerFactory, tmp_path: Path) -> None:
    app_root = tmp_path / "app"
    app_root.mkdir()
    (app_root / "swagger2.json").write_text(json.dumps({"from": "swagger2.json"}))
    (app_root / "swagger3.json").write_text(json.dumps({"from": "swagger3.json", "ü": "ß"}))
    (app_root / "swagger3.1.json").write_text("{}")  # empty: generated instead, as the reference does
    server = serve(SCRIPTS / "swagger_numpy.py", env={"AML_APP_ROOT": str(app_root)})
    assert server.get("/swagger.json").json() == {"from": "swagger2.json"}
    assert server.get("/swagger.json?version=3.0").content == b'{"from": "swagger3.json", "\\u00fc": "\\u00df"}'
    assert server.get("/swagger.json?version=3.1").json()["openapi"] == "3.1.0"
    assert f"Loaded user's swagger file for version [3] from {app_root / 'swagger3.json'}" in server.log()
    server.stop()

    (app_root / "swagger.json").write_text(json.dumps({"from": "swagger.json"}))
    assert serve(SCRIPTS / "swagger_numpy.py", env={"AML_APP_ROOT": str(app_root)}).get("/swagger.json").json() == {
        "from": "swagger.json"
    }

    (app_root / "swagger3.json").write_text('{"openapi": "3.0.3",')
    broken = serve(SCRIPTS / "swagger_numpy.py", env={"AML_APP_ROOT": str(app_root)}, wait=False)
    assert broken.wait_exit() == 3
    log = broken.log()
    assert f"Swagger file {app_root / 'swagger3.json'} is not valid JSON: Expecting property name" in log
    assert "Traceback" not in log


@pytest.mark.slow
def test_service_name_with_quotes_and_backslashes(serve: ServerFactory) -> None:
    name = 'my "quoted" \\ model'
    server = serve("swagger_numpy.py", env={"SERVICE_NAME": name, "SERVICE_VERSION": '2"b'})
    info = server.get("/swagger.json?version=3").json()["info"]
    assert info == {
        "title": name,
        "description": f"API specification for the Azure Machine Learning service {name}",
        "version": '2"b',
    }


@pytest.mark.slow
def test_prefixed_routes_are_served_and_documented(serve: ServerFactory, workers: int) -> None:
    server = serve("swagger_numpy.py", workers=workers, env={"SERVICE_PATH_PREFIX": "/models/v1/"})
    assert list(server.get("/models/v1/swagger.json").json()["paths"]) == [
        "/models/v1/",
        "/models/v1/score",
        "/models/v1/swagger.json",
    ]
    for root in ("", "/models/v1"):
        assert server.get(f"{root}/").text == "Healthy"
        assert server.post(f"{root}/score", json={"data": [1] * 10}).json() == [1] * 10
        assert server.get(f"{root}/swagger.json?version=3.1").json()["openapi"] == "3.1.0"
    assert server.get("/models/v1").status_code == 404  # strict about the trailing slash, like every route
    assert server.get("/models/score").status_code == 404
    assert "POST /models/v1/score 200" in server.wait_for_log("POST /models/v1/score 200")


@pytest.mark.slow
def test_swagger_head_and_options(serve: ServerFactory) -> None:
    server = serve("swagger_numpy.py")
    head = server.request("HEAD", "/swagger.json")
    assert (head.status_code, head.content) == (200, b"")
    assert int(head.headers["content-length"]) == len(server.get("/swagger.json").content)
    options = server.request("OPTIONS", "/swagger.json")
    assert options.status_code == 200 and "GET" in options.headers["allow"]
    assert server.post("/swagger.json").status_code == 405


# Scripts the loader rejects on purpose (tests of start-up errors): they have no documents to validate.
UNLOADABLE = {
    "import_error.py",
    "no_init.py",
    "no_run.py",
    "raw_and_schema.py",
    # Imports the reference package, which only its own tests put on the path.
    "ref_real_package.py",
    "run_noargs.py",
    "run_only_headers.py",
    "run_varargs.py",
}
EVERY_SCRIPT = sorted(SCRIPTS.glob("*.py")) + sorted(SAMPLES.glob("*/score.py"))


def _load(path: Path) -> Any:
    settings, _ = load_settings({"entry_script": str(path)})
    logging.disable(logging.CRITICAL)
    try:
        return load_user_script(settings)
    except ScriptLoadError:
        return None
    finally:
        logging.disable(logging.NOTSET)


def _build(name: str, prefix: str = "", service: str = "ML service") -> Any:
    script = _load(SCRIPTS / name)
    return build(script.run, ServiceInfo(service, "1.0", prefix), ROOT / "no-such-folder")


@pytest.mark.parametrize("path", EVERY_SCRIPT, ids=lambda path: f"{path.parent.name}/{path.name}")
def test_every_generated_document_is_valid_openapi(path: Path) -> None:
    script = _load(path)
    if script is None:
        assert path.name in UNLOADABLE
        return
    for info in (ServiceInfo("ML service", "1.0", ""), ServiceInfo('odd "name" \\', "1", "/a/b")):
        swaggers = build(script.run, info, ROOT / "no-such-folder")
        assert swaggers.versions
        for version in swaggers.versions:
            document = json.loads(swaggers.documents[version])
            validate(document)  # raises on an invalid document
            assert {"2": "swagger", "3": "openapi", "3.1": "openapi"}[version] in document


def test_the_validator_rejects_a_broken_document() -> None:
    document = json.loads(_build("swagger_numpy.py").documents["3"])
    del document["paths"]["/score"]["post"]["responses"]
    with pytest.raises(Exception, match="responses"):
        validate(document)
