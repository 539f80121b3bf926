"""TensorFlow SavedModels, answered as TensorFlow Serving's REST predict API answers them (Azure ML served them with
it): `{"instances": [...]}` (row format) with `{"predictions": [...]}`, `{"inputs": ...}` (columnar) with
`{"outputs": ...}`, binary strings as `{"b64": ...}` both ways. Inputs are checked against the signature first, so
that bad client data is a 400 naming the input, not a TensorFlow error."""

from __future__ import annotations

import base64
import binascii
import importlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from scoring_runtime.errors import BadRequest, ModelLoadError
from scoring_runtime.models.base import TENSORFLOW, Loaded, LoadOptions, Scored
from scoring_runtime.models.tensors import DATATYPES, Signature, TensorSpec, datatype_of, numpy_dtype
from scoring_runtime.models.trust import verify_digest

DEFAULT_SIGNATURE = "serving_default"
# The V2 datatype of each TensorFlow dtype JSON can carry: the numeric ones are named as numpy's.
_DATATYPES = {numpy_dtype(name).name: name for name in DATATYPES if name != "BYTES"} | {"string": "BYTES"}
# Per element type (numpy's kind): the kinds of JSON values (numpy's, after np.asarray) it takes, as TF Serving's JSON
# mapping has it (no booleans for numbers, no fractions for integers), and its name in messages.
_KINDS = {"b": ("b", "booleans"), "i": ("iu", "integers"), "u": ("iu", "integers"), "f": ("iuf", "numbers")}
# TF Serving's convention: the values of a string output whose name ends so are binary, always sent as {"b64": ...}.
_BINARY_SUFFIX = "_bytes"


@dataclass(frozen=True)
class _Endpoint:
    name: str
    function: Any
    signature: Signature


def load_tensorflow(path: Path, name: str, version: str | None, options: LoadOptions) -> TensorFlowModel:
    """The SavedModel in the folder `path`, served by its signatures ("serving_default" unless a request names one)."""
    verify_digest(path, options.sha256)
    try:
        tf: Any = importlib.import_module("tensorflow")
    except ImportError as exc:
        install = "pip install 'scoring-runtime[tensorflow]'"
        raise ModelLoadError(f"{path} is a SavedModel, but tensorflow cannot be imported ({exc}): {install}") from None
    try:
        root = tf.saved_model.load(str(path))
    except Exception as exc:  # a broken folder fails in many ways (OSError, DecodeError, ValueError...): all mean this
        raise ModelLoadError(f"{path} cannot be loaded as a TensorFlow SavedModel: {exc}") from None
    loaded = Loaded(path)
    endpoints: dict[str, _Endpoint] = {}
    for signature_name, function in sorted(dict(getattr(root, "signatures", None) or {}).items()):
        try:
            endpoints[signature_name] = _endpoint(signature_name, function)
        except ModelLoadError as exc:  # a dtype JSON cannot carry: the model's other signatures are still served
            loaded.warnings.append(f"Signature '{signature_name}' is not served: {exc}")
    if not endpoints:
        found = f" ({'; '.join(loaded.warnings)})" if loaded.warnings else ""
        advice = "save it with tf.saved_model.save(..., signatures=...)"
        raise ModelLoadError(f"The SavedModel in {path} has no serving signature that can be served{found}: {advice}")
    return TensorFlowModel(name, version, loaded, root, endpoints)


def _endpoint(name: str, function: Any) -> _Endpoint:
    _, inputs = function.structured_input_signature
    outputs = function.structured_outputs
    if not isinstance(outputs, Mapping):
        raise ModelLoadError("its outputs are not named tensors")
    specs = [tuple(_tensor_spec(*item) for item in sorted(tensors.items())) for tensors in (inputs, outputs)]
    return _Endpoint(name, function, Signature(*specs))


def _tensor_spec(name: str, spec: Any) -> TensorSpec:
    dtype = getattr(spec.dtype, "name", str(spec.dtype))
    if (datatype := _DATATYPES.get(dtype)) is None:
        raise ModelLoadError(f"tensor '{name}' has dtype {dtype}, which JSON cannot carry")
    if spec.shape.rank is None:  # V2 metadata has no "any rank": published as one open dimension, and said so
        return TensorSpec(name, datatype, (-1,), {"rank": "any"})
    return TensorSpec(name, datatype, tuple(-1 if size is None else size for size in spec.shape.as_list()))


class TensorFlowModel:
    """A loaded SavedModel; its signatures' concrete functions are thread-safe to call."""

    framework = TENSORFLOW

    def __init__(self, name: str, version: str | None, loaded: Loaded, root: Any, served: dict[str, _Endpoint]) -> None:
        tf: Any = importlib.import_module("tensorflow")  # imported by the load already
        self.name = name
        self.version = version
        self.loaded = loaded
        # Signature functions of some TensorFlow releases hold their variables weakly: the loaded object must outlive
        # every call (tensorflow/tensorflow#46708).
        self._root = root
        self._endpoints = served
        self._default = DEFAULT_SIGNATURE if DEFAULT_SIGNATURE in served else next(iter(served))
        if self._default != DEFAULT_SIGNATURE:
            loaded.warnings.append(f"No '{DEFAULT_SIGNATURE}' signature: requests without one use '{self._default}'")
        self._tf_version: str = tf.__version__
        self._invalid_argument: Any = tf.errors.InvalidArgumentError
        self.signature = served[self._default].signature

    def score(self, data: Any) -> Scored:
        """TF Serving's predict: `{"signature_name"?, "instances": [...]}` or `{"signature_name"?, "inputs": ...}`."""
        if not isinstance(data, dict) or ("instances" in data) == ("inputs" in data):
            raise BadRequest(
                'The body must be an object with "instances" (row format) or "inputs" (columnar), not both'
            )
        endpoint = self._endpoint_named(data.get("signature_name"))
        if "instances" in data:
            results = self._call(endpoint, _feeds(endpoint, data["instances"], rows=True))
            return Scored({"predictions": _predictions(endpoint, results)})
        results = self._call(endpoint, _feeds(endpoint, data["inputs"], rows=False))
        outputs = {name: _to_json(name, array) for name, array in results.items()}
        return Scored({"outputs": next(iter(outputs.values())) if len(outputs) == 1 else outputs})

    def infer(self, inputs: Mapping[str, np.ndarray[Any, Any]], outputs: Sequence[str] | None) -> dict[str, Any]:
        """The default signature on V2 tensors: datatypes must be the signature's, shapes must fit it."""
        endpoint = self._endpoints[self._default]
        signature = endpoint.signature
        _check_names(inputs, [spec.name for spec in signature.inputs], "The request's inputs")
        wanted = [spec.name for spec in signature.outputs] if outputs is None else list(outputs)
        unknown = [name for name in wanted if signature.output(name) is None]
        if unknown:
            known = ", ".join(spec.name for spec in signature.outputs)
            raise BadRequest(f"Unknown output(s) {', '.join(unknown)}: the outputs are {known}")
        feeds = {}
        for spec in signature.inputs:
            array = np.asarray(inputs[spec.name])
            if datatype_of(array.dtype) != spec.datatype:
                raise BadRequest(f"Input '{spec.name}' must be {spec.datatype}, not {datatype_of(array.dtype)}")
            _check_shape(array, spec, f"Input '{spec.name}'")
            feeds[spec.name] = array
        results = self._call(endpoint, feeds)
        return {name: results[name] for name in wanted}

    def example(self) -> dict[str, Any]:
        """A /score body for the default signature, in the row format: one instance of zeros (open sizes as 1)."""
        values = {spec.name: _zeros(spec) for spec in self.signature.inputs}
        return {"instances": [next(iter(values.values())) if len(values) == 1 else values]}

    def describe(self) -> dict[str, Any]:
        """The signatures and their tensors, for the metadata."""
        signatures = {
            name: {
                key: [spec.to_metadata() for spec in getattr(endpoint.signature, key)] for key in ("inputs", "outputs")
            }
            for name, endpoint in self._endpoints.items()
        }
        return {"tensorflow_version": self._tf_version, "default_signature": self._default, "signatures": signatures}

    def _endpoint_named(self, name: Any) -> _Endpoint:
        name = self._default if name in (None, "") else name  # as TF Serving: unset is the default
        endpoint = self._endpoints.get(name) if isinstance(name, str) else None
        if endpoint is None:
            available = ", ".join(self._endpoints)
            raise BadRequest(f"Unknown signature_name {name!r}: the model's signatures are {available}")
        return endpoint

    def _call(self, endpoint: _Endpoint, feeds: dict[str, np.ndarray[Any, Any]]) -> dict[str, np.ndarray[Any, Any]]:
        try:
            results = endpoint.function(**feeds)
        except self._invalid_argument as exc:  # the model's own ops refused what passed the signature's checks
            raise BadRequest(f"Signature '{endpoint.name}' cannot take this input: {_reason(exc.message)}") from None
        return {spec.name: results[spec.name].numpy() for spec in endpoint.signature.outputs}


def _reason(message: str) -> str:
    # TensorFlow's message opens with where its graph failed (Graph execution error, Detected at node): the op's follow.
    words = [line for line in message.splitlines() if line and not line.startswith(("Graph ", "Detected ", "<"))]
    return words[0] if words else message


def _feeds(endpoint: _Endpoint, value: Any, rows: bool) -> dict[str, np.ndarray[Any, Any]]:
    """The input tensors of a request: its instances stacked input by input, or its columns."""
    names = [spec.name for spec in endpoint.signature.inputs]
    if rows:
        if not isinstance(value, list) or not value:
            raise BadRequest('"instances" must be a non-empty list: one value, or object of named inputs, per instance')
        named = sum(_named(instance) for instance in value)
        if 0 < named < len(value):
            raise BadRequest('"instances" must be all objects of named inputs, or all values of the one input')
        for index, instance in enumerate(value if named else ()):
            _check_names(instance, names, f"Instance {index}")
        value = {name: [instance[name] for instance in value] for name in names} if named else value
    elif _named(value):
        _check_names(value, names, '"inputs"')
    if not _named(value):
        if len(names) != 1:
            what = "each instance" if rows else '"inputs"'
            raise BadRequest(f"Signature '{endpoint.name}' takes {', '.join(names)}: {what} must be an object of them")
        value = {names[0]: value}
    layout = "instances, stacked" if rows else "inputs"
    return {spec.name: _tensor(endpoint, spec, value[spec.name], layout) for spec in endpoint.signature.inputs}


def _named(value: Any) -> bool:
    return isinstance(value, dict) and not _b64(value)


def _check_names(given: Iterable[str], names: list[str], where: str) -> None:
    given = list(given)
    missing = [name for name in names if name not in given]
    unknown = [name for name in given if name not in names]
    problems = [f"{label} {', '.join(found)}" for label, found in (("missing", missing), ("unknown", unknown)) if found]
    if problems:
        raise BadRequest(f"{where}: {'; '.join(problems)}. The signature's inputs are {', '.join(names)}")


def _tensor(endpoint: _Endpoint, spec: TensorSpec, value: Any, layout: str) -> np.ndarray[Any, Any]:
    where = f"Input '{spec.name}' of signature '{endpoint.name}'"
    array = _strings(value, where) if spec.datatype == "BYTES" else _numbers(value, spec, where)
    _check_shape(array, spec, f"{where} ({layout})")
    return array


def _numbers(value: Any, spec: TensorSpec, where: str) -> np.ndarray[Any, Any]:
    dtype = numpy_dtype(spec.datatype)
    try:
        array = np.asarray(value)
    except ValueError:  # numpy refuses nested lists of unequal lengths
        raise _ragged(where) from None
    kinds, kind_name = _KINDS[dtype.kind]
    if array.size and array.dtype.kind not in kinds:
        raise BadRequest(f"{where} must hold {kind_name} ({spec.datatype})")
    limits = np.iinfo(dtype) if dtype.kind in "iu" and array.size else None
    if limits is not None and (array.min() < limits.min or array.max() > limits.max):
        raise BadRequest(f"{where} has values outside the range of {spec.datatype}")
    return array.astype(dtype, copy=False)


def _ragged(where: str) -> BadRequest:
    return BadRequest(f"{where} is ragged: its nested lists must have equal lengths")


def _strings(value: Any, where: str) -> np.ndarray[Any, Any]:
    elements = np.array(value, dtype=object)  # strings, {"b64": ...} objects and uneven lists stay whole elements
    strings = np.empty(elements.size, dtype=object)
    strings[:] = [_string(element, where) for element in elements.ravel()]
    return strings.reshape(elements.shape)


def _string(element: Any, where: str) -> bytes:
    if isinstance(element, str):
        return element.encode()
    if _b64(element):
        try:
            return base64.b64decode(element["b64"], validate=True)
        except (binascii.Error, ValueError):
            raise BadRequest(f'{where} has a "b64" value that is not base64') from None
    if isinstance(element, list):  # numpy kept a list whole: its siblings have other lengths
        raise _ragged(where)
    raise BadRequest(f'{where} must hold strings or {{"b64": "..."}} objects, not {type(element).__name__}')


def _b64(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get("b64"), str)


def _check_shape(array: np.ndarray[Any, Any], spec: TensorSpec, where: str) -> None:
    fits = array.ndim == len(spec.shape) and all(n in (-1, got) for n, got in zip(spec.shape, array.shape, strict=True))
    if not fits and spec.parameters.get("rank") != "any":
        raise BadRequest(f"{where} must have shape {list(spec.shape)} (-1: any size), not {list(array.shape)}")


def _predictions(endpoint: _Endpoint, results: dict[str, np.ndarray[Any, Any]]) -> Any:
    columns = {name: _to_json(name, array) for name, array in results.items()}
    if len(columns) == 1:
        return next(iter(columns.values()))
    batches = {name: array.shape[0] if array.ndim else None for name, array in results.items()}
    if None in batches.values() or len(set(batches.values())) != 1:
        advice = 'ask in the columnar format, {"inputs": ...}'
        raise BadRequest(f"The outputs of signature '{endpoint.name}' differ in first dimension ({batches}): {advice}")
    return [{name: column[row] for name, column in columns.items()} for row in range(len(next(iter(columns.values()))))]


def _to_json(name: str, array: np.ndarray[Any, Any]) -> Any:
    if array.dtype.kind != "O":  # TensorFlow's strings come as bytes in object arrays
        return array.tolist()
    binary = name.endswith(_BINARY_SUFFIX)
    texts = np.empty(array.size, dtype=object)
    texts[:] = [_text(value, binary) for value in array.ravel()]
    return texts.reshape(array.shape).tolist()


def _text(value: bytes, binary: bool) -> str | dict[str, str]:
    if not binary:
        try:
            return value.decode()
        except UnicodeDecodeError:  # JSON strings are text: other bytes go as TF Serving sends binary values
            pass
    return {"b64": base64.b64encode(value).decode("ascii")}


def _zeros(spec: TensorSpec) -> Any:
    shape = [1 if size == -1 else size for size in spec.shape[1:]]
    return np.full(shape, "" if spec.datatype == "BYTES" else 0, dtype=numpy_dtype(spec.datatype)).tolist()
