"""The context's layout, Dockerfile, .dockerignore and README, for each way of naming the code and the models."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from scoring_runtime._version import __version__
from scoring_runtime.config import FIELDS
from scoring_runtime.packaging import files
from tests.packaging.conftest import Packager, tree

HADOLINT = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")


def env_of(dockerfile: Path) -> dict[str, str]:
    """The ENV instruction's values (quoted, one per line)."""
    text = dockerfile.read_text().replace("\\\n", "\n")
    block = text.partition("\nENV ")[2]
    pairs = [line.strip().partition("=") for line in block.splitlines() if "=" in line]
    return {name: value.strip('"') for name, _, value in pairs}


def lint(dockerfile: Path, threshold: str = "error") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [HADOLINT, "--failure-threshold", threshold, "--no-color", str(dockerfile)], capture_output=True, text=True
    )


def test_a_script_and_one_model(project: Path, package: Packager) -> None:
    done = package("--entry_script", "app/score.py", "--model_dir", "models/iris", "--output", "ctx")
    assert done.status == 0, done.err
    assert done.err == ""
    assert "docker build -t ctx:latest ctx" in done.out
    assert tree(project / "ctx") == [
        ".dockerignore",
        "Dockerfile",
        "README.md",
        "azureml-app/lib/helper.py",
        "azureml-app/score.py",
        "azureml-models/iris/1/model.pkl",
    ]
    assert env_of(project / "ctx" / "Dockerfile") == {
        "AZUREML_ENTRY_SCRIPT": "score.py",
        "AZUREML_MODEL_DIR": "/var/azureml-models/iris/1",
    }
    assert [line for line in (project / "ctx" / ".dockerignore").read_text().splitlines() if line[:1] != "#"] == [
        "*",
        "!azureml-app",
        "!azureml-models",
    ]
    assert not list(project.glob(".ctx.*"))  # no staging folder left beside it


def test_the_dockerfile_builds_on_the_runtime_image_and_keeps_its_entry_point(project: Path, package: Packager) -> None:
    assert package("--entry_script", "app/score.py", "--model_dir", "models/iris", "--output", "ctx").status == 0
    lines = (project / "ctx" / "Dockerfile").read_text().splitlines()
    assert f"ARG BASE_IMAGE=scoring-runtime:{__version__}" in lines
    assert "FROM ${BASE_IMAGE}" in lines
    assert "COPY azureml-app /var/azureml-app" in lines
    assert "COPY azureml-models /var/azureml-models" in lines
    assert not [line for line in lines if line.startswith(("ENTRYPOINT", "CMD", "USER", "RUN", "EXPOSE"))]


def test_the_variables_are_the_ones_the_server_reads() -> None:
    assert files.ENTRY_SCRIPT_ENV == FIELDS["entry_script"].metadata["env"]
    assert files.MODEL_DIR_ENV == FIELDS["model_dir"].metadata["env"]


def test_an_azure_ml_model_folder_gives_its_name_and_version(project: Path, package: Packager) -> None:
    (project / "registered" / "diabetes" / "7").mkdir(parents=True)
    (project / "registered" / "diabetes" / "7" / "model.onnx").write_bytes(b"onnx")
    done = package("--entry_script", "app/score.py", "--model_dir", "registered/diabetes/7/", "--output", "ctx")
    assert done.status == 0, done.err
    assert (project / "ctx" / "azureml-models" / "diabetes" / "7" / "model.onnx").is_file()
    assert env_of(project / "ctx" / "Dockerfile")["AZUREML_MODEL_DIR"] == "/var/azureml-models/diabetes/7"


def test_a_script_and_several_models(project: Path, package: Packager) -> None:
    (project / "other.onnx").write_bytes(b"onnx")
    done = package(
        *("--entry_script", "app/score.py", "--output", "ctx"),
        *("--model", "iris:1=models/iris", "--model", "iris:2=models/iris", "--model", "other:5=other.onnx"),
    )
    assert done.status == 0, done.err
    assert [path for path in tree(project / "ctx") if path.startswith("azureml-models/")] == [
        "azureml-models/iris/1/model.pkl",
        "azureml-models/iris/2/model.pkl",
        "azureml-models/other/5/other.onnx",
    ]
    assert env_of(project / "ctx" / "Dockerfile")["AZUREML_MODEL_DIR"] == "/var/azureml-models"


def test_the_no_code_form(project: Path, package: Packager) -> None:
    done = package("--model_dir", "models/iris", "--output", "ctx")
    assert done.status == 0, done.err
    assert tree(project / "ctx") == [".dockerignore", "Dockerfile", "README.md", "azureml-models/iris/1/model.pkl"]
    dockerfile = project / "ctx" / "Dockerfile"
    assert env_of(dockerfile) == {"AZUREML_MODEL_DIR": "/var/azureml-models/iris/1"}
    assert "azureml-app" not in dockerfile.read_text()
    assert "!azureml-app" not in (project / "ctx" / ".dockerignore").read_text()
    readme = (project / "ctx" / "README.md").read_text()
    assert "http://127.0.0.1:6789/v2/models/iris/infer" in readme
    assert "http://127.0.0.1:6789/score" in readme


def test_the_no_code_form_with_several_models_has_no_score_example(project: Path, package: Packager) -> None:
    done = package("--model", "iris:1=models/iris", "--model", "setosa:2=models/iris", "--output", "ctx")
    assert done.status == 0, done.err
    readme = (project / "ctx" / "README.md").read_text()
    assert "/v2/models/iris/versions/1/infer" in readme
    assert "/score" not in readme  # /score serves a single model only


def test_a_source_dir_with_subfolders(project: Path, package: Packager) -> None:
    (project / "src" / "service" / "data").mkdir(parents=True)
    (project / "src" / "service" / "score.py").write_text("def init(): pass\ndef run(x): return x\n")
    (project / "src" / "service" / "data" / "labels.txt").write_text("a\n")
    (project / "src" / "common.py").write_text("")
    done = package("--source_dir", "src", "--entry_script", "src/service/score.py", "--output", "ctx")
    assert done.status == 0, done.err
    assert [path for path in tree(project / "ctx") if path.startswith("azureml-app/")] == [
        "azureml-app/common.py",
        "azureml-app/service/data/labels.txt",
        "azureml-app/service/score.py",
    ]
    assert env_of(project / "ctx" / "Dockerfile") == {"AZUREML_ENTRY_SCRIPT": "service/score.py"}
    assert "!azureml-models" not in (project / "ctx" / ".dockerignore").read_text()


def test_the_script_may_be_named_from_the_source_dir_as_azure_ml_names_it(project: Path, package: Packager) -> None:
    done = package("--source_dir", "app", "--entry_script", "score.py", "--output", "ctx")
    assert done.status == 0, done.err
    assert env_of(project / "ctx" / "Dockerfile") == {"AZUREML_ENTRY_SCRIPT": "score.py"}


def test_a_script_in_the_source_dir_wins_over_one_where_the_command_runs(project: Path, package: Packager) -> None:
    (project / "score.py").write_text("")
    done = package("--source_dir", "app", "--entry_script", "score.py", "--output", "ctx")
    assert done.status == 0, done.err
    assert "score.py" not in tree(project / "ctx")


def test_a_model_file_is_named_after_it(project: Path, package: Packager) -> None:
    done = package("--model_dir", "models/iris/model.pkl", "--output", "ctx")
    assert done.status == 0, done.err
    assert "azureml-models/model/1/model.pkl" in tree(project / "ctx")
    assert env_of(project / "ctx" / "Dockerfile") == {"AZUREML_MODEL_DIR": "/var/azureml-models/model/1"}


def test_caches_version_control_environments_and_the_output_are_not_copied(project: Path, package: Packager) -> None:
    app = project / "app"
    for folder in ("__pycache__", ".git", "venv", "envs/conda/conda-meta", "lib/__pycache__"):
        (app / folder).mkdir(parents=True)
    (app / "__pycache__" / "score.cpython-311.pyc").write_bytes(b"")
    (app / ".git" / "HEAD").write_text("ref\n")
    (app / "venv" / "pyvenv.cfg").write_text("home = /usr\n")
    (app / "envs" / "conda" / "conda-meta" / "history").write_text("")
    (app / ".env.example").write_text("KEPT=1\n")
    for _ in range(2):  # the second time, the first context is inside the source folder, and is replaced
        done = package("--entry_script", "app/score.py", "--output", "app/build", "--force")
        assert done.status == 0, done.err
    assert tree(app / "build" / "azureml-app") == [".env.example", "lib/helper.py", "score.py"]
    assert not list(app.glob(".build.*"))


def test_files_are_made_readable_by_the_servers_user(project: Path, package: Packager) -> None:
    (project / "app" / "score.py").chmod(0o600)
    (project / "app" / "lib").chmod(0o700)
    assert package("--entry_script", "app/score.py", "--output", "ctx").status == 0
    assert (project / "ctx" / "azureml-app" / "score.py").stat().st_mode & 0o444 == 0o444
    assert (project / "ctx" / "azureml-app" / "lib").stat().st_mode & 0o555 == 0o555


def test_the_readme_has_the_commands(project: Path, package: Packager) -> None:
    done = package("--entry_script", "app/score.py", "--model_dir", "models/iris", "--output", "ctx", "--tag", "ir:2")
    assert done.status == 0, done.err
    readme = (project / "ctx" / "README.md").read_text()
    assert "docker build -t ir:2 ctx\n" in readme
    assert "docker run -p 6789:5001 ir:2\n" in readme
    assert "curl -s -H 'Content-Type: application/json' -d " in readme
    assert "http://127.0.0.1:6789/score" in readme


def test_the_base_image_can_be_chosen(project: Path, package: Packager) -> None:
    done = package("--entry_script", "app/score.py", "--base_image", "registry.example/rt:1.2", "--output", "ctx")
    assert done.status == 0, done.err
    assert "ARG BASE_IMAGE=registry.example/rt:1.2\n" in (project / "ctx" / "Dockerfile").read_text()


def test_an_existing_empty_folder_is_used(project: Path, package: Packager) -> None:
    (project / "ctx").mkdir()
    assert package("--model_dir", "models/iris", "--output", "ctx").status == 0
    assert (project / "ctx" / "Dockerfile").is_file()


def test_missing_parent_folders_are_created(project: Path, package: Packager) -> None:
    assert package("--model_dir", "models/iris", "--output", "build/images/iris").status == 0
    assert (project / "build" / "images" / "iris" / "Dockerfile").is_file()


@pytest.mark.parametrize(
    "args",
    [
        ("--entry_script", "app/score.py", "--model_dir", "models/iris"),
        ("--model", "iris:1=models/iris", "--model", "iris:2=models/iris"),
        ("--source_dir", "app", "--entry_script", "score.py"),
    ],
)
def test_the_dockerfile_lints_clean(project: Path, package: Packager, args: tuple[str, ...]) -> None:
    assert package(*args, "--output", "ctx").status == 0
    linted = lint(project / "ctx" / "Dockerfile")
    assert linted.returncode == 0, linted.stdout + linted.stderr
    strict = lint(project / "ctx" / "Dockerfile", "warning")  # not even a warning
    assert strict.returncode == 0, strict.stdout + strict.stderr


def test_the_command_runs_as_a_module(project: Path) -> None:
    command = [sys.executable, "-m", "scoring_runtime", "package", "--model_dir", "models/iris", "--output", "ctx"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert (project / "ctx" / "azureml-models" / "iris" / "1" / "model.pkl").is_file()
    failed = subprocess.run([*command[:4], "--output", "other"], capture_output=True, text=True, timeout=60)
    assert failed.returncode == 2
    assert failed.stderr.count("\n") == 1 and failed.stderr.startswith("scoring-runtime package: ")
    assert not (project / "other").exists()


def test_the_server_does_not_import_packaging() -> None:
    probe = (
        "import sys, scoring_runtime.cli, scoring_runtime.serving; "
        "print(sorted(name for name in sys.modules if name.startswith('scoring_runtime.packaging')))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "[]"
