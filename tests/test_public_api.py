"""The public API keeps its names, and the package root imports each only when it is first used."""

from __future__ import annotations

import subprocess
import sys

import pytest

import scoring_runtime

PUBLIC = {
    "AMLRequest": "scoring_runtime.azureml.aml_request",
    "AMLResponse": "scoring_runtime.azureml.aml_response",
    "rawhttp": "scoring_runtime.contract.rawhttp",
    "get_model_path": "scoring_runtime.azureml.models",
    "ScoringApp": "scoring_runtime.app.application",
    "create_app": "scoring_runtime.app.embedding",
    "Settings": "scoring_runtime.settings",
    "load_settings": "scoring_runtime.config",
    "ModelNotFoundError": "scoring_runtime.errors",
    "ScoringRuntimeError": "scoring_runtime.errors",
    "load_model": "scoring_runtime.models.script_models",
    "leased_model": "scoring_runtime.models.script_models",
}


def test_every_public_name_resolves_where_it_is_defined() -> None:
    assert set(scoring_runtime.__all__) == {*PUBLIC, "__version__"}
    for name, module in PUBLIC.items():
        assert getattr(scoring_runtime, name).__module__ == module, name
    assert set(scoring_runtime.__all__) <= set(dir(scoring_runtime))
    with pytest.raises(AttributeError, match="no attribute 'Scorer'"):
        scoring_runtime.Scorer  # noqa: B018


def test_the_version_and_the_cli_help_do_not_load_the_web_stack() -> None:
    code = (
        "import sys, scoring_runtime; scoring_runtime.__version__;"
        "from scoring_runtime.cli import build_parser; build_parser().format_help();"
        "print(sorted(m for m in ('starlette', 'uvicorn', 'numpy', 'inference_schema') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
