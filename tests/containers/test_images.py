"""base-images/runtime built for real (buildah on a Debian rootfs, no Docker daemon, no registry) and run: a script
and a model folder served from the image's own entry point and settings, SIGTERM draining and SIGINT stopping the
server, the health check, the user, the size.

Run by `make test-images` (marker `container`); it needs root, for buildah's chroot isolation.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.containers.images import Container, Pid1Container, build_local, config, image
from tests.helpers import ROOT, SAMPLES, SCRIPTS

pytestmark = [pytest.mark.container, pytest.mark.slow, pytest.mark.timeout(1800)]

RUNTIME = "localhost/scoring-runtime:test"
NOCODE = "localhost/scoring-runtime-nocode:test"
APP = "/var/azureml-app"
# The issue's target for the runtime image, whose base here is Debian's python3 (a slim image of its own).
MAX_RUNTIME_MB = 300


@pytest.fixture(scope="module", autouse=True)
def root_only() -> None:
    if os.geteuid() != 0:
        pytest.skip("building and running images with buildah (chroot isolation) needs root")


@pytest.fixture(scope="module")
def runtime() -> str:
    return image(RUNTIME)


@pytest.fixture(scope="module")
def nocode() -> str:
    return image(NOCODE, "sklearn,onnx")


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Any]:
    started: list[Container] = []

    def run(name: str, env: dict[str, str], volumes: dict[Path, str], kind: type[Container] = Container) -> Container:
        container = kind(name, tmp_path, env, volumes)
        started.append(container)
        return container

    yield run
    for container in started:
        container.stop()


def test_the_runtime_image_is_configured_as_the_issue_asks(runtime: str) -> None:
    settings = config(runtime)
    env = dict(item.split("=", 1) for item in settings["Env"])
    assert settings["Entrypoint"] == ["scoring-runtime"]
    assert settings["User"] == "1000:1000"
    assert settings["WorkingDir"] == APP
    assert "5001/tcp" in settings["ExposedPorts"]
    assert env["AML_APP_ROOT"] == APP and env["SERVER_PORT"] == "5001"
    assert "/live" in " ".join(settings["Healthcheck"]["Test"])  # kept: the image is in Docker's format
    size_mb = build_local.image_size(runtime) / 1e6
    print(f"{runtime}: {size_mb:.0f} MB")
    assert size_mb < MAX_RUNTIME_MB


def test_a_script_is_served_from_the_image_as_user_1000_with_its_health_check(runtime: str, start: Any) -> None:
    container = start(runtime, {"AZUREML_ENTRY_SCRIPT": "score.py"}, {SAMPLES / "echo": APP}).wait_ready()
    answer = httpx.post(container.url + "/score", content=b"hello", timeout=10)
    assert answer.status_code == 200 and answer.text == '"hello"'
    status = Path(f"/proc/{container.server_pid()}/status").read_text()
    assert "\nUid:\t1000\t" in status
    healthcheck = config(runtime)["Healthcheck"]["Test"]
    assert healthcheck[0] == "CMD"
    port = {"SERVER_PORT": str(container.port)}
    assert container.exec(*healthcheck[1:], env=port).returncode == 0
    assert container.exec(*healthcheck[1:], env={"SERVER_PORT": "1"}).returncode != 0
    # Nothing to compile with is left in the image.
    found = container.exec("sh", "-c", "command -v gcc cc c++ make || true")
    assert found.returncode == 0 and found.stdout.strip() == ""


@pytest.mark.parametrize("kind", [Container, Pid1Container], ids=["buildah-run", "pid-1"])
def test_sigterm_drains_what_was_accepted_and_sigint_stops(runtime: str, start: Any, kind: type[Container]) -> None:
    env = {"AZUREML_ENTRY_SCRIPT": "sleepy.py", "SCORING_GRACEFUL_TIMEOUT_S": "20"}
    container = start(runtime, env, {SCRIPTS: APP}, kind).wait_ready()
    if isinstance(container, Pid1Container):
        assert container.pid_in_namespace() == 1
    answers: list[httpx.Response] = []
    client = threading.Thread(
        target=lambda: answers.append(httpx.post(container.url + "/score", content=b"2", timeout=30))
    )
    client.start()
    log = container.log()
    while "sleeping 2s in run()" not in log:
        assert container.process.poll() is None, log
        log = container.log()
    container.signal(signal.SIGTERM)
    client.join(30)
    assert answers and answers[0].status_code == 200, container.log()
    assert container.wait_exit(30) == 0, container.log()
    assert "Draining" in container.log()

    second = start(runtime, env, {SCRIPTS: APP}, kind).wait_ready()
    second.signal(signal.SIGINT)
    assert second.wait_exit(30) == 0, second.log()
    assert "Traceback" not in second.log()


def test_the_nocode_image_serves_a_model_folder_without_a_script(nocode: str, start: Any) -> None:
    model = ROOT / "sample_models" / "iris" / "model"
    container = start(
        nocode, {"AZUREML_MODEL_DIR": "/var/azureml-models/iris/1"}, {model: "/var/azureml-models/iris/1"}
    )
    container.wait_ready()
    scored = httpx.post(container.url + "/score", json={"data": [[5.1, 3.5, 1.4, 0.2]]}, timeout=10)
    assert scored.status_code == 200 and len(scored.json()[0]) == 3
    assert scored.headers["x-ms-model-method"] == "predict_proba"
    tensor = {"name": "input", "shape": [1, 4], "datatype": "FP64", "data": [5.1, 3.5, 1.4, 0.2]}
    inferred = httpx.post(container.url + "/v2/models/iris/infer", json={"inputs": [tensor]}, timeout=10)
    assert inferred.status_code == 200 and inferred.json()["outputs"][0]["data"] == [0]
    print(f"{nocode}: {build_local.image_size(nocode) / 1e6:.0f} MB")


def test_a_packaged_context_builds_without_network_and_serves(runtime: str, start: Any, tmp_path: Path) -> None:
    """`scoring-runtime package` in Azure ML's layout: its wheelhouse installs at build time, the script and the
    model are where AZUREML_ENTRY_SCRIPT and AZUREML_MODEL_DIR say."""
    app = tmp_path / "src"
    (app / "model").mkdir(parents=True)
    (app / "model" / "greeting.txt").write_text("hello")
    (app / "score.py").write_text(
        "import os\nimport six\n\n\ndef init():\n    global greeting\n"
        "    greeting = open(os.path.join(os.environ['AZUREML_MODEL_DIR'], 'greeting.txt')).read()\n\n\n"
        "def run(data):\n    return {'greeting': greeting, 'six': six.__version__, 'data': data}\n"
    )
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("six==1.17.0\n")
    context = tmp_path / "context"
    command = [sys.executable, "-m", "scoring_runtime", "package", "--entry_script", str(app / "score.py")]
    command += ["--model", f"greeting:3={app / 'model'}", "--requirements", str(requirements)]
    command += ["--base_image", runtime, "--output", str(context)]
    packaged = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert packaged.returncode == 0, packaged.stderr
    assert list((context / "wheelhouse").glob("six-1.17.0-*.whl"))
    tag = "localhost/scoring-packaged:test"
    build_local.build(context / "Dockerfile", tag, {"BASE_IMAGE": runtime}, context=context)
    container = start(tag, {}, {}).wait_ready()
    answer = httpx.post(container.url + "/score", content=b"hi", timeout=10)
    assert answer.status_code == 200, container.log()
    assert answer.json() == {"greeting": "hello", "six": "1.17.0", "data": "hi"}
