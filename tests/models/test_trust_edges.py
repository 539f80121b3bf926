"""Trusting model files at their edges: digests of what cannot be read or pinned, names a file gives that are not
installed, .skops files that are not, and pickle opcodes the common models do not use but a crafted file may."""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import io
import os
import pickle
import sys
import types
from collections import OrderedDict
from pathlib import Path

import joblib  # type: ignore[import-untyped]
import numpy as np
import pytest
from joblib.numpy_pickle import NumpyArrayWrapper  # type: ignore[import-untyped]
from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]

from scoring_runtime.errors import ModelLoadError, ModelRefused
from scoring_runtime.models.base import LoadOptions
from scoring_runtime.models.trust import load_pickle, load_skops, verify_digest
from scoring_runtime.models.unpickle import Refused, restricted_load

RESTRICTED = LoadOptions()
TRUSTED = LoadOptions(trust_pickle=True)
HINT = "; set SCORING_TRUST_PICKLE=true if you trust this file"


def written(tmp_path: Path, data: bytes, name: str = "model.pkl") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


# Digests


def test_a_directory_with_a_dangling_link_cannot_be_checked(tmp_path: Path) -> None:
    saved = tmp_path / "saved_model"
    saved.mkdir()
    (saved / "saved_model.pb").write_bytes(b"graph")
    (saved / "variables").symlink_to(tmp_path / "gone")
    with pytest.raises(ModelLoadError) as caught:
        verify_digest(saved, "ab" * 32)
    assert not isinstance(caught.value, ModelRefused)
    assert str(caught.value) == (
        f"{saved} cannot be read to check SCORING_MODEL_SHA256: [Errno 2] No such file or directory: "
        f"'{saved / 'variables'}'"
    )


def test_a_missing_file_cannot_be_checked(tmp_path: Path) -> None:
    missing = tmp_path / "model.onnx"
    with pytest.raises(ModelLoadError, match="cannot be read to check SCORING_MODEL_SHA256: .*No such file"):
        verify_digest(missing, "ab" * 32)


def test_a_link_to_a_directory_cannot_be_pinned(tmp_path: Path) -> None:
    saved = tmp_path / "saved_model"
    (saved / "assets").mkdir(parents=True)
    (saved / "saved_model.pb").write_bytes(b"graph")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (saved / "variables").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(ModelRefused) as caught:
        verify_digest(saved, "ab" * 32)
    assert str(caught.value) == (
        f"{saved} holds a symbolic link to a directory, {os.path.join(saved, 'variables')}, "
        "which SCORING_MODEL_SHA256 cannot pin"
    )


# Names a file gives that are not installed


@pytest.mark.parametrize(
    ("stream", "name"),
    [
        (b"csklearn.linear_model\nNoSuchModel\n)\x81.", "sklearn.linear_model.NoSuchModel"),
        (b"csklearn.no_such_module\nModel\n)\x81.", "sklearn.no_such_module.Model"),
    ],
)
def test_a_class_this_install_lacks_is_a_load_error(tmp_path: Path, stream: bytes, name: str) -> None:
    path = written(tmp_path, b"\x80\x02" + stream)
    with pytest.raises(ModelLoadError) as caught:
        load_pickle(path, RESTRICTED)
    assert not isinstance(caught.value, ModelRefused)
    assert str(caught.value).startswith(f"{path} cannot be loaded: {name} cannot be imported (")


@pytest.fixture
def without_joblib(monkeypatch: pytest.MonkeyPatch) -> None:
    """As in an install without the [sklearn] extra: joblib's distribution is not found."""
    version = importlib.metadata.version

    def lookup(name: str) -> str:
        if name == "joblib":
            raise importlib.metadata.PackageNotFoundError(name)
        return version(name)

    monkeypatch.setattr(importlib.metadata, "version", lookup)


def test_without_joblib_plain_pickles_load_and_joblib_arrays_say_why_not(tmp_path: Path, without_joblib: None) -> None:
    plain = written(tmp_path, pickle.dumps({"weights": [1.0, 2.0]}))
    assert load_pickle(plain, RESTRICTED)[0] == {"weights": [1.0, 2.0]}
    assert load_pickle(plain, TRUSTED)[0] == {"weights": [1.0, 2.0]}  # pickle's own loader, without joblib's
    uncompressed = tmp_path / "model.joblib"
    joblib.dump({"weights": np.arange(3.0)}, uncompressed)
    with pytest.raises(ModelLoadError) as caught:
        load_pickle(uncompressed, RESTRICTED)
    assert str(caught.value) == (
        f"{uncompressed} cannot be loaded: joblib.numpy_pickle.NumpyArrayWrapper cannot be imported: joblib is not "
        "installed: pip install 'scoring-runtime[sklearn]'"
    )
    compressed = tmp_path / "zlib.joblib"
    joblib.dump({"weights": np.arange(3.0)}, compressed, compress=3)
    with pytest.raises(ModelLoadError) as caught:
        load_pickle(compressed, RESTRICTED)
    assert str(caught.value) == (
        f"{compressed} cannot be loaded: the file is compressed by joblib, and joblib is not installed: "
        "pip install 'scoring-runtime[sklearn]'"
    )


def test_joblib_files_older_than_0_10_are_refused(tmp_path: Path) -> None:
    path = written(tmp_path, b"ZF0x" + b"\x00" * 32, "old.joblib")  # joblib < 0.10's zfile prefix
    with pytest.raises(ModelRefused) as caught:
        load_pickle(path, RESTRICTED)
    assert str(caught.value) == f"{path} is in the format of joblib before 0.10, whose arrays are separate files{HINT}"


def _wrapper_stream(dtype: object, shape: object, after: bytes = b"") -> bytes:
    """A joblib file (uncompressed) whose array header is `dtype` and `shape`, followed by `after`, then STOP."""
    wrapper = NumpyArrayWrapper(np.ndarray, (1,), "C", np.dtype(np.float64))
    wrapper.dtype, wrapper.shape = dtype, shape
    stream = pickle.dumps(wrapper, protocol=2)
    assert stream.endswith(b"b.")
    return stream[:-1] + after + b"."


@pytest.mark.parametrize(("dtype", "shape"), [("float64", (2,)), (np.dtype(np.float64), (-1,)), (None, None)])
def test_a_malformed_array_header_is_a_load_error(tmp_path: Path, dtype: object, shape: object) -> None:
    path = written(tmp_path, _wrapper_stream(dtype, shape), "model.joblib")
    with pytest.raises(ModelLoadError) as caught:
        load_pickle(path, RESTRICTED)
    assert str(caught.value) == f"{path} cannot be unpickled: ValueError: an array header in the file is malformed"


def test_an_object_array_unlike_its_header_is_a_load_error(tmp_path: Path) -> None:
    elements = pickle.dumps(np.array([1, "x", 2.5], dtype=object), protocol=2)
    path = written(tmp_path, _wrapper_stream(np.dtype(object), (2,), elements), "model.joblib")
    with pytest.raises(ModelLoadError) as caught:
        load_pickle(path, RESTRICTED)
    assert str(caught.value) == (
        f"{path} cannot be unpickled: ValueError: an array of objects in the file does not match its header"
    )
    good = written(tmp_path, _wrapper_stream(np.dtype(object), (3,), elements), "good.joblib")
    assert load_pickle(good, RESTRICTED)[0].tolist() == [1, "x", 2.5]


# .skops files


def test_a_file_that_is_not_skops_is_a_load_error(tmp_path: Path) -> None:
    path = written(tmp_path, b"not a zip file", "model.skops")
    with pytest.raises(ModelLoadError, match=f"^{path} cannot be read as a .skops file: "):
        load_skops(path, LoadOptions())


def test_a_trusted_type_that_is_not_installed_is_a_load_error(tmp_path: Path) -> None:
    import skops.io  # type: ignore[import-untyped]

    package = tmp_path / "package"
    package.mkdir()
    (package / "custom_scaler_mod.py").write_text("class Scaler:\n    def __init__(self):\n        self.factor = 2\n")
    sys.path.insert(0, str(package))  # undone by the suite's autouse fixture
    module = importlib.import_module("custom_scaler_mod")
    path = tmp_path / "model.skops"
    skops.io.dump(module.Scaler(), path)
    del sys.modules["custom_scaler_mod"]
    sys.path.remove(str(package))
    (package / "custom_scaler_mod.py").unlink()  # trained where that package was installed; it is not here
    options = LoadOptions(skops_trusted=("custom_scaler_mod.Scaler",))
    with pytest.raises(ModelLoadError) as caught:
        load_skops(path, options)
    assert str(caught.value).startswith(f"{path} cannot be loaded by skops: ModuleNotFoundError: ")
    assert "custom_scaler_mod" in str(caught.value)


# Opcodes and names of crafted or old files


def test_python2_names_are_mapped_before_they_are_checked(tmp_path: Path) -> None:
    # Python 2's __builtin__.xrange is range; copy_reg is copyreg. Protocol 0, as Python 2 wrote by default.
    path = written(tmp_path, b"c__builtin__\nxrange\n(I0\nI6\nI2\ntR.")
    assert load_pickle(path, RESTRICTED)[0] == range(0, 6, 2)
    refused = written(tmp_path, b"c__builtin__\neval\n(S'1'\ntR.", "eval.pkl")
    with pytest.raises(ModelRefused, match=r"refers to builtins\.eval, which a model file may not load"):
        load_pickle(refused, RESTRICTED)


def test_protocol_0_objects_rebuild_on_builtin_bases_only(tmp_path: Path) -> None:
    model = LogisticRegression(C=0.5)
    path = written(tmp_path, pickle.dumps(model, protocol=0))
    loaded = load_pickle(path, RESTRICTED)[0]
    assert type(loaded) is LogisticRegression and loaded.C == 0.5
    # copyreg._reconstructor(LogisticRegression, StandardScaler, None) would call StandardScaler.__init__ on it
    crafted = (
        b"ccopy_reg\n_reconstructor\n(csklearn.linear_model\nLogisticRegression\n"
        b"csklearn.preprocessing\nStandardScaler\nNtR."
    )
    bad = written(tmp_path, crafted, "crafted.pkl")
    with pytest.raises(ModelRefused) as caught:
        load_pickle(bad, RESTRICTED)
    assert str(caught.value) == (
        f"{bad} refers to copyreg._reconstructor with base 'StandardScaler', which a model file may not load{HINT}"
    )


def test_arrays_are_never_created_from_arguments(tmp_path: Path) -> None:
    newobj = written(tmp_path, b"\x80\x02cnumpy\nndarray\nK\x08\x85\x81.", "newobj.pkl")
    newobj_ex = written(tmp_path, b"\x80\x04cnumpy\nndarray\n)}(\x8c\x05shape\x94K\x08u\x92.", "newobj_ex.pkl")
    for path in (newobj, newobj_ex):
        with pytest.raises(ModelRefused) as caught:
            load_pickle(path, RESTRICTED)
        assert str(caught.value) == f"{path} creates a numpy array from arguments, which a model file may not do{HINT}"
    # NEWOBJ_EX of a class that is not an array builds it
    ordered = written(tmp_path, b"\x80\x04ccollections\nOrderedDict\n)}\x92.", "ordered.pkl")
    assert load_pickle(ordered, RESTRICTED)[0] == OrderedDict()


def test_dict_subclass_items_may_not_be_dunder_names(tmp_path: Path) -> None:
    for items in ({"a": 1}, {"a": 1, "b": 2}):  # one item is SETITEM, several SETITEMS
        path = written(tmp_path, pickle.dumps(OrderedDict(items), protocol=2))
        assert load_pickle(path, RESTRICTED)[0] == OrderedDict(items)
        path = written(tmp_path, pickle.dumps(OrderedDict({**items, "__class__": 1}), protocol=2))
        with pytest.raises(ModelRefused, match="sets __class__ on a OrderedDict, which a model file may not do"):
            load_pickle(path, RESTRICTED)
    plain = written(tmp_path, pickle.dumps({"__class__": 1, "b": 2}, protocol=2))
    assert load_pickle(plain, RESTRICTED)[0] == {"__class__": 1, "b": 2}  # a plain dict's keys are only keys


def test_ufuncs_load_under_the_names_numpy_1_and_2_give_them() -> None:
    # numpy 2 pickles np.log1p as numpy.log1p; numpy 1.x as numpy.core._multiarray_umath.log1p, which 2 still resolves.
    for stream in (b"\x80\x02cnumpy\nlog1p\n.", b"\x80\x02cnumpy.core._multiarray_umath\nlog1p\n."):
        assert restricted_load(io.BytesIO(stream)) is np.log1p


def _refused_name(stream: bytes) -> str:
    with pytest.raises(Refused) as caught:
        restricted_load(io.BytesIO(stream))
    return caught.value.what


def test_a_bare_module_name_stands_only_for_a_packages_own_module(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # On sys.path but not imported: a bare name is never imported (scikit-learn 1.7 pickles its losses as `_loss.*`).
    (tmp_path / "_alias_probe.py").write_text("import pathlib\npathlib.Path(__file__).with_name('ran').touch()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert _refused_name(b"c_alias_probe\nCyHalfSquaredError\n.") == (
        "refers to _alias_probe.CyHalfSquaredError, which a model file may not load"
    )
    assert not (tmp_path / "ran").exists() and "_alias_probe" not in sys.modules
    # Held under a bare name, claiming a scikit-learn module's name, but not that module: sys.modules does not hold it
    # under its dotted name, or it was not loaded from inside the package.
    fake = types.ModuleType("sklearn._loss._fake")
    fake.Loss = type("Loss", (), {"__module__": "_fake"})  # type: ignore[attr-defined]
    fake.__file__ = str(Path(np.__file__).parent.parent / "sklearn" / "_loss" / "_fake.py")
    monkeypatch.setitem(sys.modules, "_fake", fake)
    assert _refused_name(b"c_fake\nLoss\n.") == "refers to _fake.Loss, which a model file may not load"
    fake.__file__ = str(tmp_path / "_fake.py")
    monkeypatch.setitem(sys.modules, "sklearn._loss._fake", fake)
    assert _refused_name(b"c_fake\nLoss\n.") == "refers to _fake.Loss, which a model file may not load"
    # An alias of scikit-learn's own module stands for it, under the rules of its real name.
    logistic = importlib.import_module("sklearn.linear_model._logistic")
    monkeypatch.setitem(sys.modules, "_logistic", logistic)
    assert restricted_load(io.BytesIO(b"c_logistic\nLogisticRegression\n.")) is LogisticRegression
    assert _refused_name(b"c_logistic\nnp\n.") == (
        "refers to sklearn.linear_model._logistic.np, which a model file may not load"
    )


def test_cythons_shared_runtime_is_no_model_class() -> None:
    # Cython 3.1's array and memoryview types, shipped by scikit-learn as sklearn._cyutility.
    assert _refused_name(b"csklearn._cyutility\narray\n.") == (
        "refers to sklearn._cyutility.array, which a model file may not load"
    )


def test_restricted_load_of_a_stream(tmp_path: Path) -> None:
    model = LogisticRegression(C=2.0)
    loaded = restricted_load(io.BytesIO(pickle.dumps(model)))
    assert type(loaded) is LogisticRegression and loaded.C == 2.0
    with pytest.raises(Refused) as caught:  # an array stored joblib's way, in a stream that is not joblib's
        restricted_load(io.BytesIO(b"\x80\x02cjoblib.numpy_pickle\nNumpyArrayWrapper\n)\x81."))
    assert caught.value.what == "refers to joblib.numpy_pickle.NumpyArrayWrapper, which only a joblib file holds"


def test_the_digest_of_a_file_is_its_sha256(tmp_path: Path) -> None:
    path = written(tmp_path, b"weights")
    verify_digest(path, " " + hashlib.sha256(b"weights").hexdigest().upper() + "\n")
