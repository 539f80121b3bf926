"""ONNX models served with onnxruntime on the CPU, over Azure ML's /score and the Open Inference Protocol.

A classifier converted by skl2onnx with its defaults answers its probabilities through a ZipMap, one {label:
probability} map per row; we answer them dense, one column per label, with the labels in the signature and in the
`x-ms-model-classes` header (Triton refuses such graphs: triton-inference-server/onnxruntime_backend#94).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from scoring_runtime.errors import BadRequest, ModelLoadError
from scoring_runtime.models.base import CLASSES_HEADER, ONNX, Loaded, LoadOptions, Scored, classes_header
from scoring_runtime.models.onnx_graph import Label, ModelHeader, is_zipmap, read_header, tensor_spec, zipmap_labels
from scoring_runtime.models.onnx_inputs import from_json, from_tensor
from scoring_runtime.models.tensors import Signature, TensorSpec, numpy_dtype
from scoring_runtime.models.trust import verify_digest


def load_onnx(path: Path, name: str, version: str | None, options: LoadOptions) -> OnnxModel:
    """An onnxruntime session for the file, on the CPU, with `options.threads` threads in its pool (None: one per
    physical core, onnxruntime's default, which ignores cgroup quotas and the other workers)."""
    verify_digest(path, options.sha256)
    onnxruntime = _runtime(path)
    session_options = onnxruntime.SessionOptions()
    if options.threads is not None:
        session_options.intra_op_num_threads = options.threads
    try:
        session = onnxruntime.InferenceSession(str(path), session_options, providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime's own classes: InvalidProtobuf, InvalidGraph, NoSuchFile, Fail, ...
        raise ModelLoadError(f"{path} is not an ONNX model onnxruntime can load: {error}") from None
    zipmaps = [arg.name for arg in session.get_outputs() if is_zipmap(arg)]
    labels = zipmap_labels(path, zipmaps) if zipmaps else {}
    return OnnxModel(session, path, name, version, labels, read_header(path))


class OnnxModel:
    """One onnxruntime session, shared by every call: its `run` is thread-safe."""

    framework = ONNX

    def __init__(
        self,
        session: Any,
        path: Path,
        name: str,
        version: str | None,
        labels: Mapping[str, Sequence[Label]],
        header: ModelHeader,
    ) -> None:
        onnxruntime = _runtime(path)
        self.name = name
        self.version = version
        self.loaded = Loaded(path)
        self._session = session
        self._header = header
        self._zipmaps = frozenset(arg.name for arg in session.get_outputs() if is_zipmap(arg))
        # Learnt from the first answer when the file did not tell them; each output's labels are written once, and a
        # racing second write stores the same list.
        self._labels: dict[str, list[Label]] = {output: list(found) for output, found in labels.items()}
        inputs = tuple(tensor_spec(arg, "input", path) for arg in session.get_inputs())
        outputs = tuple(tensor_spec(arg, "output", path, labels.get(arg.name)) for arg in session.get_outputs())
        self.signature = Signature(inputs, outputs)
        self._output_names = [spec.name for spec in outputs]
        # Errors onnxruntime raises for what a client sent (a type, a size a node cannot take) are the client's.
        self._client_errors: tuple[type[Exception], ...] = (
            onnxruntime.capi.onnxruntime_pybind11_state.InvalidArgument,
            onnxruntime.capi.onnxruntime_pybind11_state.Fail,
        )
        # A node's kernel refusing the values it was given (Add on batch sizes that do not broadcast) is FAIL from
        # onnxruntime 1.32 (caught above) but RUNTIME_EXCEPTION on 1.23, the floor: the client's too there, told
        # by the executor's wording. Any other RUNTIME_EXCEPTION stays the server's.
        self._runtime_exception: type[Exception] = onnxruntime.capi.onnxruntime_pybind11_state.RuntimeException
        # A client's bad input would otherwise be logged as an onnxruntime error line on top of our 400.
        self._run_options = onnxruntime.RunOptions()
        self._run_options.log_severity_level = 4

    def score(self, data: Any) -> Scored:
        """`{"data": x}` for a graph of one input, or `{"<input>": x, ...}`; answers every output by name."""
        if not isinstance(data, dict):
            raise BadRequest(f'The body must be a JSON object: {{"data": ...}} or the inputs by name ({self._names()})')
        feed = {spec.name: from_json(spec, value) for spec, value in self._inputs_of(data)}
        results = self._run(self._output_names, feed)
        answer = {output: value.tolist() for output, value in results.items()}
        return Scored(answer, self._classes_header())

    def infer(self, inputs: Mapping[str, np.ndarray[Any, Any]], outputs: Sequence[str] | None) -> dict[str, Any]:
        """Every input by name, cast to the graph's type where nothing is lost; the outputs asked for, or all."""
        self._check_names(set(inputs))
        feed = {spec.name: from_tensor(spec, inputs[spec.name]) for spec in self.signature.inputs}
        if outputs is None:
            return self._run(self._output_names, feed)
        unknown = [output for output in outputs if self.signature.output(output) is None]
        if unknown:
            raise BadRequest(f"Unknown outputs: {_quoted(unknown)}. The model has {_quoted(self._output_names)}")
        return self._run(list(dict.fromkeys(outputs)), feed)

    def example(self) -> dict[str, Any] | None:
        """A /score body of zeros (empty strings, false) shaped as the inputs, a symbolic dimension as 1; None when an
        input's rank is not known (onnxruntime reports an unknown rank as a scalar's)."""
        if any(not spec.shape for spec in self.signature.inputs):
            return None
        values = {spec.name: _zeros(spec).tolist() for spec in self.signature.inputs}
        if len(values) == 1:
            return {"data": next(iter(values.values()))}
        return values

    def describe(self) -> dict[str, Any]:
        """What the file says of itself, and its inputs and outputs."""
        meta = self._session.get_modelmeta()
        description: dict[str, Any] = {
            "framework": self.framework,
            "producer": {
                "name": self._header.producer_name or meta.producer_name,
                "version": self._header.producer_version,
            },
            "ir_version": self._header.ir_version,
            "opsets": dict(self._header.opsets),
            "graph": meta.graph_name,
            "model_version": meta.version,
            "inputs": [spec.to_metadata() for spec in self.signature.inputs],
            "outputs": [spec.to_metadata() for spec in self.signature.outputs],
        }
        if meta.description:
            description["description"] = meta.description
        if meta.custom_metadata_map:
            description["metadata"] = dict(meta.custom_metadata_map)
        if self._labels:
            description["labels"] = {output: list(labels) for output, labels in self._labels.items()}
        return description

    def _inputs_of(self, data: dict[str, Any]) -> list[tuple[TensorSpec, Any]]:
        specs = self.signature.inputs
        if len(specs) == 1 and set(data) == {"data"}:
            return [(specs[0], data["data"])]
        self._check_names(set(data))
        return [(spec, data[spec.name]) for spec in specs]

    def _check_names(self, sent: set[str]) -> None:
        names = [spec.name for spec in self.signature.inputs]
        missing = [name for name in names if name not in sent]
        unknown = sorted(sent.difference(names))
        if missing or unknown:
            problems = []
            if missing:
                problems.append(f"missing inputs: {_quoted(missing)}")
            if unknown:
                problems.append(f"unknown inputs: {_quoted(unknown)}")
            accepted = self._names() + (' (or "data")' if len(names) == 1 else "")
            raise BadRequest(f"The model takes the inputs {accepted}; {'; '.join(problems)}")

    def _names(self) -> str:
        return _quoted([spec.name for spec in self.signature.inputs])

    def _run(self, outputs: list[str], feed: dict[str, np.ndarray[Any, Any]]) -> dict[str, Any]:
        try:
            values = self._session.run(outputs, feed, self._run_options)
        except self._client_errors as error:
            raise BadRequest(f"The model cannot take this input: {error}") from None
        except self._runtime_exception as error:
            if _NODE_FAILED not in str(error):
                raise
            raise BadRequest(f"The model cannot take this input: {error}") from None
        return {
            output: self._dense(output, value) if output in self._zipmaps else value
            for output, value in zip(outputs, values, strict=True)
        }

    def _dense(self, output: str, maps: list[dict[Label, float]]) -> np.ndarray[Any, Any]:
        """A ZipMap's maps as rows of probabilities, in the labels' order."""
        labels = self._labels.get(output)
        if labels is None:
            if not maps:
                return np.empty((0, 0), dtype=np.float32)
            labels = self._labels[output] = list(maps[0])
        return np.array([[row[label] for label in labels] for row in maps], dtype=np.float32).reshape(-1, len(labels))

    def _classes_header(self) -> tuple[tuple[str, str], ...]:
        labels = next((self._labels[output] for output in self._output_names if output in self._labels), None)
        header = classes_header(labels)
        return () if header is None else ((CLASSES_HEADER, header),)


# How onnxruntime's executor words a node that failed while running (onnxruntime/core/framework/*_executor.cc).
_NODE_FAILED = "Non-zero status code returned while running "


def _runtime(path: Path) -> Any:
    try:
        import onnxruntime  # type: ignore[import-untyped]
    except ImportError:
        raise ModelLoadError(
            f"{path} is an ONNX model, and onnxruntime is not installed: pip install 'scoring-runtime[onnx]'"
        ) from None
    return onnxruntime


def _zeros(spec: TensorSpec) -> np.ndarray[Any, Any]:
    shape = tuple(1 if dim < 0 else dim for dim in spec.shape)
    if spec.datatype == "BYTES":
        return np.full(shape, "", dtype=object)
    return np.zeros(shape, dtype=numpy_dtype(spec.datatype))


def _quoted(names: Sequence[str]) -> str:
    return ", ".join(f"'{name}'" for name in names)
