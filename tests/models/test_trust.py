"""Trusting model files: digests, the model folder, restricted unpickling of pickle and joblib files, .skops types."""

from __future__ import annotations

import builtins
import functools
import hashlib
import logging
import math
import os
import pickle
import re
import subprocess
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import joblib  # type: ignore[import-untyped]
import numpy as np
import pandas as pd
import pytest
from lightgbm import LGBMClassifier
from sklearn.compose import ColumnTransformer  # type: ignore[import-untyped]
from sklearn.datasets import load_iris  # type: ignore[import-untyped]
from sklearn.ensemble import GradientBoostingRegressor, RandomForestClassifier  # type: ignore[import-untyped]
from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]
from sklearn.pipeline import Pipeline, make_pipeline  # type: ignore[import-untyped]
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler  # type: ignore[import-untyped]
from sklearn.svm import SVC  # type: ignore[import-untyped]
from xgboost import XGBClassifier

from scoring_runtime.errors import ModelLoadError, ModelRefused
from scoring_runtime.models import trust, unpickle_joblib
from scoring_runtime.models.base import LoadOptions
from scoring_runtime.models.trust import confined, load_pickle, load_skops, verify_digest

RESTRICTED = LoadOptions()
X, Y = load_iris(return_X_y=True)


def _frame() -> Any:
    colors = np.array(["red", "green", "blue"])[np.arange(len(Y)) % 3]
    return pd.DataFrame({"color": colors, "length": X[:, 0], "width": X[:, 1]})


def _svc() -> Any:
    with warnings.catch_warnings():  # scikit-learn 1.9 deprecates probability=True; it is still what users pickle
        warnings.simplefilter("ignore", FutureWarning)
        return make_pipeline(StandardScaler(), SVC(probability=True, random_state=0)).fit(X, Y)


def _column_transformer() -> Any:
    encode = ColumnTransformer([("color", OneHotEncoder(handle_unknown="ignore"), ["color"])], remainder="passthrough")
    return Pipeline([("encode", encode), ("model", LogisticRegression(max_iter=500))]).fit(_frame(), Y)


def _string_labels() -> Any:
    labels = np.array(load_iris().target_names, dtype=object)[Y]  # classes_ becomes an array of Python objects
    model = LogisticRegression(max_iter=500).fit(X, labels)
    assert model.classes_.dtype == object
    return model


def _log1p() -> Any:
    return make_pipeline(FunctionTransformer(np.log1p), LogisticRegression(max_iter=500)).fit(X, Y)


MODELS: dict[str, Callable[[], Any]] = {
    "logistic": lambda: LogisticRegression(max_iter=500).fit(X, Y),
    "forest": lambda: RandomForestClassifier(n_estimators=8, random_state=0).fit(X, Y),
    "svc": _svc,
    "columns": _column_transformer,  # fitted on a DataFrame
    "labels": _string_labels,
    "log1p": _log1p,
    "xgboost": lambda: XGBClassifier(n_estimators=4, max_depth=2).fit(X, Y),
    "lightgbm": lambda: LGBMClassifier(n_estimators=4, verbose=-1).fit(X, Y),
    "boosting": lambda: GradientBoostingRegressor(n_estimators=8, random_state=0).fit(X, X[:, 0]),
}
WRITERS: dict[str, Callable[[Any, Path], object]] = {
    "model.pkl": lambda model, path: path.write_bytes(pickle.dumps(model)),
    "model.joblib": lambda model, path: joblib.dump(model, path, compress=0),
    "zlib.joblib": lambda model, path: joblib.dump(model, path, compress=3),
    "lzma.joblib": lambda model, path: joblib.dump(model, path, compress=("lzma", 3)),
}


@functools.cache
def _model(name: str) -> Any:
    return MODELS[name]()


def _answers(model: Any, data: Any) -> list[Any]:
    answers = [model.predict(data)]
    if hasattr(model, "predict_proba"):
        answers.append(model.predict_proba(data))
    return answers


@pytest.mark.parametrize("writer", WRITERS)
@pytest.mark.parametrize("name", MODELS)
def test_legitimate_models_load_and_predict_the_same(tmp_path: Path, name: str, writer: str) -> None:
    model, data = _model(name), _frame() if name == "columns" else X
    path = tmp_path / writer
    WRITERS[writer](model, path)
    loaded, found = load_pickle(path, RESTRICTED)
    assert type(loaded) is type(model)
    assert found == []
    for expected, actual in zip(_answers(model, data), _answers(loaded, data), strict=True):
        np.testing.assert_array_equal(actual, expected)


def test_plain_data_structures_load(tmp_path: Path) -> None:
    values = {
        "frame": pd.DataFrame({"when": pd.date_range("2024", periods=2, tz="UTC"), "n": pd.array([1, None], "Int64")}),
        "categories": pd.Categorical(["a", "b", "a"]),
        "index": pd.MultiIndex.from_tuples([(1, "a"), (2, "b")]),
        "masked": np.ma.masked_array([1, 2], mask=[False, True]),
        # The zone as a ZoneInfo, not by name: pandas 2.2 makes a named zone a pytz one, pickled as pytz._p, which the
        # unpickler does not allow: pytz is no dependency of ours (nor of pandas 3), and pytz._p, though it only opens
        # zones of pytz's bundled list, adds the offsets a file names to pytz's process-wide cache of that zone. pandas
        # 3 makes a named zone a ZoneInfo: the same data on both.
        "scalars": [
            np.float32(1.5),
            np.datetime64("2024-01-01"),
            pd.Timestamp("2024", tz=ZoneInfo("Europe/Paris")),
            pd.NaT,
        ],
        "random": np.random.RandomState(0),
    }
    for protocol in (2, pickle.HIGHEST_PROTOCOL):
        path = tmp_path / f"values{protocol}.pkl"
        path.write_bytes(pickle.dumps(values, protocol=protocol))
        loaded, _ = load_pickle(path, RESTRICTED)
        pd.testing.assert_frame_equal(loaded["frame"], values["frame"])
        assert loaded["index"].equals(values["index"]) and list(loaded["categories"]) == ["a", "b", "a"]
        assert loaded["random"].randint(1000) == np.random.RandomState(0).randint(1000)


class _Reduce:
    def __init__(self, call: Any, *args: Any) -> None:
        self.call, self.args = call, args

    def __reduce__(self) -> tuple[Any, ...]:
        return self.call, self.args


def _touch(marker: Path) -> list[tuple[Any, str]]:
    """Payloads that would create `marker`, each with the name the refusal must give."""
    inner = marker.with_suffix(".inner")
    inner.write_bytes(pickle.dumps(_Reduce(os.system, f"touch {marker}")))
    return [
        (_Reduce(os.system, f"touch {marker}"), f"{os.system.__module__}.system"),
        (_Reduce(builtins.eval, f"open({str(marker)!r}, 'w').close()"), "builtins.eval"),
        (_Reduce(subprocess.Popen, ["touch", str(marker)]), "subprocess.Popen"),
        (_Reduce(functools.partial(os.system, f"touch {marker}")), "functools.partial"),
        (_Reduce(pd.read_pickle, str(inner)), f"{pd.read_pickle.__module__}.read_pickle"),
        (_Reduce(joblib.load, str(inner)), f"{joblib.load.__module__}.load"),
        (_Reduce(np.load, str(inner), None, True), f"{np.load.__module__}.load"),
    ]


@pytest.mark.parametrize("container", ["alone", "object array", "in a model"])
@pytest.mark.parametrize("writer", WRITERS)
def test_code_in_a_file_is_refused_and_never_runs(tmp_path: Path, writer: str, container: str) -> None:
    marker = tmp_path / "ran"
    for payload, name in _touch(marker):
        if container == "object array":  # joblib stores its elements as a nested pickle, numpy's pickle as a list
            payload = np.array([1, payload, "x"], dtype=object)
        elif container == "in a model":
            model = pickle.loads(pickle.dumps(_model("labels")))
            model.classes_ = np.array(["setosa", "versicolor", payload], dtype=object)
            payload = model
        path = tmp_path / writer
        WRITERS[writer](payload, path)
        with pytest.raises(ModelRefused) as refused:
            load_pickle(path, RESTRICTED)
        assert str(refused.value) == (
            f"{path} refers to {name}, which a model file may not load; "
            "set SCORING_TRUST_PICKLE=true if you trust this file"
        )
        assert not marker.exists()


@pytest.mark.parametrize(
    ("payload", "refusal"),
    [
        # numpy reads the pointers of an object array out of these bytes: a crash, or worse
        (_Reduce(np.ndarray, (1,), object, b"\x01" * 8), "calls numpy.ndarray with arguments"),
        (_Reduce(np.memmap, "/etc/hostname"), "refers to numpy.memmap"),
        (_Reduce(getattr, LogisticRegression, "predict"), "refers to builtins.getattr(LogisticRegression, 'predict')"),
    ],
)
def test_dangerous_uses_of_allowed_names_are_refused(tmp_path: Path, payload: Any, refusal: str) -> None:
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(payload))
    with pytest.raises(ModelRefused, match=f"^{re.escape(f'{path} {refusal}')}, which a model file may not"):
        load_pickle(path, RESTRICTED)


def test_state_may_not_set_dunder_attributes_nor_patch_classes(tmp_path: Path) -> None:
    path = tmp_path / "model.pkl"
    model = LogisticRegression()
    model.__dict__["__array_interface__"] = {"data": (1, False), "shape": (8,), "typestr": "<f8"}
    path.write_bytes(pickle.dumps(model))
    with pytest.raises(ModelRefused, match="sets __array_interface__ on a LogisticRegression"):
        load_pickle(path, RESTRICTED)
    # GLOBAL LogisticRegression, BUILD {"predict": None}: would replace the method for the whole process
    path.write_bytes(b"csklearn.linear_model\nLogisticRegression\n}S'predict'\nNsb.")
    with pytest.raises(ModelRefused, match="sets the state of LogisticRegression"):
        load_pickle(path, RESTRICTED)
    assert callable(LogisticRegression.predict)


class Harmless:  # a class of the user's own, outside every package a model file may name
    def __init__(self, value: int) -> None:
        self.value = value


def test_trusting_pickles_loads_any_class(tmp_path: Path) -> None:
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(Harmless(7)))
    with pytest.raises(ModelRefused, match=f"refers to {__name__}.Harmless"):
        load_pickle(path, RESTRICTED)
    loaded, _ = load_pickle(path, LoadOptions(trust_pickle=True))
    assert isinstance(loaded, Harmless) and loaded.value == 7


@pytest.mark.parametrize("writer", WRITERS)
def test_truncated_files_are_load_errors(tmp_path: Path, writer: str) -> None:
    path = tmp_path / writer
    WRITERS[writer](_model("labels"), path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ModelLoadError, match=f"^{path} cannot be unpickled: ") as failed:
        load_pickle(path, RESTRICTED)
    assert not isinstance(failed.value, ModelRefused)


def test_untested_joblib_reads_plain_pickles_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    installed = unpickle_joblib.joblib_version()
    assert installed is not None and unpickle_joblib.is_tested(installed)  # the suite runs the restricted reader
    monkeypatch.setattr(unpickle_joblib, "joblib_version", lambda: "9.1.0")
    model = _model("logistic")
    plain = tmp_path / "model.pkl"
    plain.write_bytes(pickle.dumps(model))
    assert type(load_pickle(plain, RESTRICTED)[0]) is LogisticRegression
    untested = (
        "is in joblib's format, which restricted loading reads only with joblib 1.5 or 1.6, not the installed "
        "9.1.0 (install one of those); set SCORING_TRUST_PICKLE=true if you trust this file"
    )
    for writer in ("model.joblib", "zlib.joblib"):
        path = tmp_path / writer
        WRITERS[writer](model, path)
        with pytest.raises(ModelRefused) as refused:
            load_pickle(path, RESTRICTED)
        assert str(refused.value) == f"{path} {untested}"
        assert type(load_pickle(path, LoadOptions(trust_pickle=True))[0]) is LogisticRegression


def test_version_warnings_are_returned_and_logged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import sklearn.base  # type: ignore[import-untyped]

    with monkeypatch.context() as patch:  # BaseEstimator.__getstate__ records the version that pickled it
        patch.setattr(sklearn.base, "__version__", "1.0.2")
        data = pickle.dumps(_model("logistic"))
    path = tmp_path / "model.pkl"
    path.write_bytes(data)
    with caplog.at_level(logging.WARNING, logger="azmlinfsrv"):
        _, found = load_pickle(path, RESTRICTED)
    assert len(found) == 1 and "from version 1.0.2 when using version" in found[0]
    assert [record.getMessage() for record in caplog.records] == [f"Loading {path}: {found[0]}"]


def test_digest_of_a_file(tmp_path: Path) -> None:
    path = tmp_path / "model.pkl"
    path.write_bytes(b"model" * 300_000)  # more than one chunk
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    verify_digest(path, None)
    verify_digest(path, digest.upper())
    wrong = "0" * 64
    with pytest.raises(ModelRefused) as refused:
        verify_digest(path, wrong)
    assert str(refused.value) == (
        f"{path} does not have the digest SCORING_MODEL_SHA256 pins: expected {wrong}, found {digest}"
    )
    with pytest.raises(ModelRefused, match="does not have the digest"):  # checked before anything is unpickled
        load_pickle(path, LoadOptions(trust_pickle=True, sha256=wrong))


def test_digest_of_a_directory(tmp_path: Path) -> None:
    saved = tmp_path / "saved"
    (saved / "variables").mkdir(parents=True)
    (saved / "saved_model.pb").write_bytes(b"graph")
    (saved / "variables" / "variables.index").write_bytes(b"index")
    (tmp_path / "outside").write_bytes(b"shared")
    (saved / "variables" / "shared").symlink_to(tmp_path / "outside")
    # The documented form: sha256sum's lines for every file, sorted by relative path, hashed.
    lines = [
        f"{hashlib.sha256(content).hexdigest()}  {name}\n"
        for name, content in sorted(
            {"saved_model.pb": b"graph", "variables/variables.index": b"index", "variables/shared": b"shared"}.items()
        )
    ]
    verify_digest(saved, hashlib.sha256("".join(lines).encode()).hexdigest())
    (saved / "variables" / "variables.index").write_bytes(b"changed")
    with pytest.raises(ModelRefused, match=f"^{saved} does not have the digest"):
        verify_digest(saved, hashlib.sha256("".join(lines).encode()).hexdigest())


def test_confined_to_the_model_folder(tmp_path: Path) -> None:
    root, outside = tmp_path / "models", tmp_path / "elsewhere.pkl"
    root.mkdir()
    outside.write_bytes(b"x")
    (root / "model.pkl").write_bytes(b"x")
    (root / "link.pkl").symlink_to(root / "model.pkl")
    assert confined(root / "link.pkl", root) == (root / "model.pkl").resolve()
    (root / "escape.pkl").symlink_to(outside)
    with pytest.raises(ModelRefused, match="outside the model folder .*: models load only from the configured folder"):
        confined(root / "escape.pkl", root)
    with pytest.raises(ModelRefused):
        confined(root / ".." / "elsewhere.pkl", root)


def test_skops_types_are_the_operators_to_trust(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import skops.io  # type: ignore[import-untyped]

    plain, custom = tmp_path / "plain.skops", tmp_path / "custom.skops"
    skops.io.dump(_model("logistic"), plain)
    skops.io.dump(make_pipeline(FunctionTransformer(math.log1p)), custom)
    loaded, _ = load_skops(plain, RESTRICTED)
    np.testing.assert_array_equal(loaded.predict(X), _model("logistic").predict(X))
    with pytest.raises(ModelRefused) as refused:
        load_skops(custom, RESTRICTED)
    assert str(refused.value) == (
        f"{custom} holds types that skops does not trust by default: math.log1p; "
        "list those you trust in SCORING_SKOPS_TRUSTED (comma-separated)"
    )
    loaded, _ = load_skops(custom, LoadOptions(skops_trusted=("math.log1p",)))
    assert loaded.steps[0][1].func is math.log1p
    monkeypatch.setattr(trust, "missing_module", lambda modules: modules[0])
    with pytest.raises(ModelLoadError, match=r"skops is not installed: pip install 'scoring-runtime\[sklearn\]'"):
        load_skops(tmp_path / "model.skops", RESTRICTED)
