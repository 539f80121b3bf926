"""The no-code iris samples in tests: what their READMEs say, and the iris classifier built by
sample_models/build_models.py with the scikit-learn that is installed.

A scikit-learn pickle is only good for the release that saved it (scikit-learn 1.7 cannot predict with 1.9's
LogisticRegression): the committed sample_models/iris/model is checked only under the release its README names, and
every other test serves the classifier built here."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from typing import Any

import pytest
import sklearn  # type: ignore[import-untyped]

from tests.helpers import SAMPLES

BUILD_SCRIPT = SAMPLES / "build_models.py"
_BUILT_WITH = re.compile(r"with scikit-learn (\d[^\s;)]*)")
_JSON_BLOCK = re.compile(r"```json\n(.*?)\n```", re.DOTALL)


def readme(sample: str) -> str:
    return (SAMPLES / sample / "README.md").read_text()


def built_with(sample: str) -> str:
    """The scikit-learn release that built `sample`, as its README says."""
    found = _BUILT_WITH.search(readme(sample))
    assert found is not None, f"sample_models/{sample}/README.md does not name the scikit-learn that built it"
    return found.group(1)


def readme_answers(sample: str) -> list[Any]:
    """The JSON answers `sample`'s README shows, in order: /score's, then /v2/models/iris/infer's."""
    return [json.loads(block) for block in _JSON_BLOCK.findall(readme(sample))]


def build_iris(folder: Path) -> Any:
    """The samples' iris classifier, fitted by build_models.fit() with the installed scikit-learn, saved as
    `folder/model.joblib`; the model."""
    import joblib  # type: ignore[import-untyped]

    spec = importlib.util.spec_from_file_location("sample_models_build_models", BUILD_SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = module.fit()
    folder.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, folder / "model.joblib")
    return model


# For the tests of the committed sklearn sample itself.
same_sklearn_as_the_iris_sample = pytest.mark.skipif(
    sklearn.__version__ != built_with("iris"),
    reason=(
        f"sample_models/iris/model was saved by scikit-learn {built_with('iris')}, and a scikit-learn pickle is only "
        f"good for that release (scikit-learn {sklearn.__version__} is installed)"
    ),
)
