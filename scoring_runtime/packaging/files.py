"""The files written beside the copied code and models: Dockerfile, .dockerignore and README.md."""

from __future__ import annotations

import shlex

from scoring_runtime._version import __version__
from scoring_runtime.packaging.inputs import Package

APP = "azureml-app"
MODELS = "azureml-models"
WHEELHOUSE = "wheelhouse"
REQUIREMENTS = "requirements.txt"
# The image's Azure ML settings, by the names the server reads (docs/configuration.md).
ENTRY_SCRIPT_ENV = "AZUREML_ENTRY_SCRIPT"
MODEL_DIR_ENV = "AZUREML_MODEL_DIR"
PORT = 6789  # the host port the README's commands publish the image's 5001 on


def copied(package: Package) -> list[str]:
    """The context's entries the Dockerfile reads: all the builder is sent."""
    entries = [APP] if package.source_dir is not None else []
    entries += [MODELS] if package.models else []
    entries += [WHEELHOUSE, REQUIREMENTS] if package.installs else []
    return entries


def environment(package: Package) -> dict[str, str]:
    values = {}
    if package.entry_script is not None:
        values[ENTRY_SCRIPT_ENV] = str(package.entry_script)
    if package.model_dir is not None:
        values[MODEL_DIR_ENV] = package.model_dir
    return values


def dockerfile(package: Package) -> str:
    lines = [
        f"# Made by `scoring-runtime package` {__version__}. The base image's server is the entry point; its settings",
        "# are environment variables (`docker run -e WORKER_COUNT=2 ...`), and it listens on 5001.",
        f"ARG BASE_IMAGE={package.base_image}",
        "FROM ${BASE_IMAGE}",
    ]
    if package.installs:
        lines += [
            "# The wheels were downloaded with the package (for x86-64 Linux): the build needs no network. They are",
            "# mounted rather than copied, so that no layer keeps them. Root installs them; uid 1000 serves.",
            "USER 0",
            f"RUN --mount=type=bind,source={WHEELHOUSE},target=/tmp/{WHEELHOUSE} \\",
            f"    --mount=type=bind,source={REQUIREMENTS},target=/tmp/{REQUIREMENTS} \\",
            "    /opt/scoring-runtime/bin/pip install --no-cache-dir --disable-pip-version-check \\",
            f"        --no-index --find-links /tmp/{WHEELHOUSE} --requirement /tmp/{REQUIREMENTS}",
            "USER 1000:1000",
        ]
    # The code and the models stay root's: the server reads them and writes nothing there.
    if package.source_dir is not None:
        lines.append(f"COPY {APP} /var/{APP}")
    if package.models:
        lines.append(f"COPY {MODELS} /var/{MODELS}")
    settings = [f"{name}={_quoted(value)}" for name, value in environment(package).items()]
    if settings:
        lines.append("ENV " + " \\\n    ".join(settings))
    return "\n".join(lines) + "\n"


def dockerignore(package: Package) -> str:
    allowed = "".join(f"!{entry}\n" for entry in copied(package))
    return f"# The builder is sent only what the Dockerfile copies or mounts.\n*\n{allowed}"


def readme(package: Package) -> str:
    tag = shlex.quote(package.tag)
    what = f"`{package.entry_script}`" if package.entry_script is not None else "no script (the models are served)"
    models = ", ".join(f"`{model.name}` version {model.version}" for model in package.models) or "none"
    sections = [
        f"# {package.tag}\n",
        f"An image of scoring-runtime {__version__}, made by `scoring-runtime package`: entry script {what}; "
        f"models {models}; base image `{package.base_image}`.\n",
        "## Build and run\n",
        "```sh",
        f"docker build -t {tag} {package.shown_output}",
        f"docker run -p {PORT}:5001 {tag}",
        "```\n",
        "The server's settings are environment variables (`docker run -e WORKER_COUNT=2 ...`).",
        *_platform_note(package),
        "\n## Try it\n",
        "```sh",
        f"curl -s http://127.0.0.1:{PORT}/ready",
        *_examples(package),
        "```\n",
        "## What is here\n",
        *_layout(package),
    ]
    return "\n".join(sections) + "\n"


def _platform_note(package: Package) -> list[str]:
    if not package.installs:
        return []
    return [
        f"The wheels in `{WHEELHOUSE}/` are for CPython {package.python_version} on x86-64 Linux: on an ARM machine,",
        "build with `--platform linux/amd64`.",
    ]


def _examples(package: Package) -> list[str]:
    json = "-H 'Content-Type: application/json'"
    if package.entry_script is not None:
        body = '{"data": [[1.0, 2.0, 3.0]]}'  # whatever run() takes
        return [f"curl -s {json} -d '{body}' http://127.0.0.1:{PORT}/score"]
    model = package.models[0]
    path = f"{model.name}/versions/{model.version}" if len(package.models) > 1 else model.name
    v2 = '{"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP64", "data": [5.1, 3.5, 1.4, 0.2]}]}'
    lines = [f"curl -s http://127.0.0.1:{PORT}/v2/models/{path}  # its inputs, by name, type and shape"]
    lines.append(f"curl -s {json} -d '{v2}' http://127.0.0.1:{PORT}/v2/models/{path}/infer")
    if len(package.models) == 1:  # /score serves the one model of a deployment, as on Azure ML
        lines.append(f"curl -s {json} -d '{{\"data\": [[5.1, 3.5, 1.4, 0.2]]}}' http://127.0.0.1:{PORT}/score")
    return lines


def _layout(package: Package) -> list[str]:
    described = {
        APP: f"`{APP}/`: the code, copied to `/var/{APP}` (the app root)",
        MODELS: f"`{MODELS}/<name>/<version>/`: the models, copied to `/var/{MODELS}`",
        WHEELHOUSE: f"`{WHEELHOUSE}/`: the wheels `{REQUIREMENTS}` needs, installed offline",
        REQUIREMENTS: f"`{REQUIREMENTS}`: what is installed into the server's environment",
    }
    lines = [f"- {described[entry]}" for entry in copied(package)]
    lines += [f"- `{name}={value}`" for name, value in environment(package).items()]
    return lines


def _quoted(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$")
    return f'"{escaped}"'
