"""What we ship for containers and clusters, checked as the tools that read them would: the Kubernetes manifests
against the API's own schemas (kubernetes-validate, strict), KServe's resources against its CRDs' schemas (the parts
they use, tests/data/kserve), and every Dockerfile with hadolint."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
KUBERNETES = sorted((ROOT / "deploy" / "kubernetes").glob("*.yaml"))
KSERVE = sorted((ROOT / "deploy" / "kserve").glob("*.yaml"))
CRDS = ROOT / "tests" / "data" / "kserve"
# An older release (the preStop exec hook rather than 1.30's sleep action keeps the manifests valid for those too),
# and the newest kubernetes-validate knows.
VERSIONS = ("1.31.0", kubernetes_validate.latest_version())


def resources(paths: list[Path]) -> list[dict[str, Any]]:
    return [document for path in paths for document in yaml.safe_load_all(path.read_text()) if document]


def applied(paths: list[Path]) -> list[dict[str, Any]]:
    """The resources kubectl would apply: kustomization.yaml is kustomize's, not the API's."""
    return [document for document in resources(paths) if document["kind"] != "Kustomization"]


@pytest.mark.parametrize("version", VERSIONS)
def test_the_kubernetes_manifests_are_valid_and_strictly_so(version: str) -> None:
    documents = applied(KUBERNETES)
    assert {document["kind"] for document in documents} == {"Deployment", "Service", "HorizontalPodAutoscaler"}
    for document in documents:
        kubernetes_validate.validate(document, version, strict=True)


def test_strict_validation_finds_a_misspelt_field() -> None:
    deployment = next(document for document in applied(KUBERNETES) if document["kind"] == "Deployment")
    broken = copy.deepcopy(deployment)
    broken["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, VERSIONS[-1], strict=True)


def test_kustomize_lists_every_manifest() -> None:
    (kustomization,) = [document for document in resources(KUBERNETES) if document["kind"] == "Kustomization"]
    assert sorted(kustomization["resources"]) == sorted(
        path.name for path in KUBERNETES if path.name != "kustomization.yaml"
    )


def test_the_deployment_keeps_the_promises_of_docs_deploy() -> None:
    deployment = next(document for document in applied(KUBERNETES) if document["kind"] == "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {item["name"]: item["value"] for item in container["env"]}
    # Killed only after the drain has had its time, and the preStop pause before it.
    drain = int(env["SCORING_GRACEFUL_TIMEOUT_S"])
    assert pod["terminationGracePeriodSeconds"] > drain + 5
    assert container["startupProbe"]["httpGet"]["path"] == "/ready"
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/live"
    assert pod["securityContext"]["runAsNonRoot"] and pod["securityContext"]["runAsUser"] == 1000
    assert container["securityContext"]["readOnlyRootFilesystem"]
    assert container["ports"][0]["containerPort"] == 5001


def strict(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema with unknown fields refused, as `kubectl apply --validate=strict` refuses them."""
    schema = dict(schema)
    if "properties" in schema:
        schema["properties"] = {name: strict(sub) for name, sub in schema["properties"].items()}
        if "additionalProperties" not in schema and not schema.get("x-kubernetes-preserve-unknown-fields"):
            schema["additionalProperties"] = False
    if isinstance(schema.get("additionalProperties"), dict):
        schema["additionalProperties"] = strict(schema["additionalProperties"])
    if "items" in schema:
        schema["items"] = strict(schema["items"])
    return schema


def kserve_schema(document: dict[str, Any]) -> dict[str, Any]:
    version = document["apiVersion"].split("/")[1]
    loaded: dict[str, Any] = json.loads((CRDS / f"{document['kind']}.{version}.schema.json").read_text())
    return strict(loaded)


def test_the_kserve_resources_match_kserves_crds() -> None:
    documents = resources(KSERVE)
    assert {document["kind"] for document in documents} == {"ServingRuntime", "InferenceService"}
    for document in documents:
        jsonschema.validate(document, kserve_schema(document))
    runtime = next(document for document in documents if document["kind"] == "ServingRuntime")
    service = next(document for document in documents if document["kind"] == "InferenceService")
    assert service["spec"]["predictor"]["model"]["runtime"] == runtime["metadata"]["name"]
    formats = {entry["name"] for entry in runtime["spec"]["supportedModelFormats"]}
    assert service["spec"]["predictor"]["model"]["modelFormat"]["name"] in formats


def test_the_crd_check_finds_a_misspelt_field() -> None:
    runtime = next(document for document in resources(KSERVE) if document["kind"] == "ServingRuntime")
    broken = copy.deepcopy(runtime)
    broken["spec"]["containers"][0]["argz"] = []
    with pytest.raises(jsonschema.ValidationError, match="argz"):
        jsonschema.validate(broken, kserve_schema(broken))


def test_kserves_arguments_start_our_server(tmp_path: Path) -> None:
    """The runtime's arguments, as KServe fills them in, are ones our command line takes."""
    runtime = next(document for document in resources(KSERVE) if document["kind"] == "ServingRuntime")
    args = [
        arg.replace("{{.Name}}", "iris").replace("/mnt/models", str(tmp_path))
        for arg in runtime["spec"]["containers"][0]["args"]
    ]
    probe = (
        "import sys; from scoring_runtime.cli import settings_from; "
        "s, _ = settings_from(sys.argv[1:]); print(s.port, s.model_name)"
    )
    shown = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True, check=True).stdout
    assert shown.split() == ["8080", "iris"]


def dockerfiles() -> list[Path]:
    return sorted((ROOT / "base-images").rglob("Dockerfile*"))


def test_every_dockerfile_we_ship_lints_clean() -> None:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    assert dockerfiles(), "base-images/ has no Dockerfile"
    for dockerfile in dockerfiles():
        linted = subprocess.run(
            [hadolint, "--failure-threshold", "error", "--no-color", str(dockerfile)], capture_output=True, text=True
        )
        assert linted.returncode == 0, f"{dockerfile}:\n{linted.stdout}{linted.stderr}"


def test_hadolint_fails_a_dockerfile_with_an_error(tmp_path: Path) -> None:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM debian:bookworm\nRUN sudo true\n")  # DL3004, an error: sudo in a build
    linted = subprocess.run([hadolint, "--failure-threshold", "error", str(bad)], capture_output=True, text=True)
    assert linted.returncode != 0 and "DL3004" in linted.stdout
