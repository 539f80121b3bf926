"""Converting typed run() inputs ourselves, with inference-schema's results, without its per-request cost.

inference-schema converts inputs inside wrapt proxies around run(): one layer per @input_schema, each looking its
parameter up in the call's keyword arguments. At load time `plan` reads those layers (the parameter type objects
live only in the wrapper closures), and when every layer is one it knows, returns a FastCall: the function under the
layers plus one converter per parameter, called in the layers' order. A converter built here gives what
inference-schema's `_deserialize_input_argument` gives for the inputs it covers, and hands any other input to that
very function, so that results and errors for those stay inference-schema's own. Anything not understood keeps
today's path: the decorated run() converts.
"""

from __future__ import annotations

import importlib.metadata
import logging
from collections.abc import Callable
from dataclasses import dataclass
from types import CodeType
from typing import Any

import numpy as np
from inference_schema import schema_decorators
from inference_schema.parameter_types.numpy_parameter_type import NumpyParameterType
from inference_schema.parameter_types.pandas_parameter_type import PandasParameterType
from inference_schema.parameter_types.standard_py_parameter_type import StandardPythonParameterType

from scoring_runtime.contract import convert_pandas

logger = logging.getLogger("azmlinfsrv.convert")

Converter = Callable[[Any], Any]

# The releases whose wrapper code and conversion this module was checked against (tests/test_convert*.py).
TESTED_VERSIONS = frozenset({"1.8"})
_LAYER_FIELDS = frozenset({"param_name", "param_type", "convert_to_provided_type", "optional"})


def _inner_code(outer: Callable[..., Any], name: str) -> CodeType | None:
    """The code object of the function `name` defined inside `outer` (a constant of outer's code)."""
    for const in outer.__code__.co_consts:
        if isinstance(const, CodeType) and const.co_name == name:
            return const
    return None


_INPUT_CODE = _inner_code(schema_decorators.input_schema, "decorator_input")
_OUTPUT_CODE = _inner_code(schema_decorators.output_schema, "decorator_input")
# inference-schema's own conversion of one input, which ours hands what it does not cover; without it (a release that
# renamed it), typed inputs are left to the decorated run().
_library_convert: Callable[[Any, Any, str], Any] | None = getattr(
    schema_decorators, "_deserialize_input_argument", None
)


class ConversionError(Exception):
    """inference-schema's error for a parameter's input; `cause` is its exception, whose text the client gets."""

    def __init__(self, parameter: str, cause: Exception) -> None:
        super().__init__(f"Invalid value for the {parameter!r} parameter: {cause}")
        self.parameter = parameter
        self.cause = cause


@dataclass(frozen=True)
class Step:
    name: str
    optional: bool
    convert: Converter


@dataclass(frozen=True)
class FastCall:
    target: Callable[..., Any]  # the function under the schema layers
    steps: tuple[Step, ...]  # outermost layer first: the order inference-schema converts (and fails) in

    def prepare(self, kwargs: dict[str, Any]) -> bool:
        """Convert kwargs in place for `target`; False when inference-schema's decorated run() must take the call.

        Raises ConversionError for an input inference-schema rejects.
        """
        for step in self.steps:
            if step.name not in kwargs and not step.optional:
                # inference-schema then looks the parameter up by position and fails in its own way: let it.
                return False
        for step in self.steps:
            value = kwargs.get(step.name)
            if step.optional and not value:
                continue  # inference-schema skips absent and falsy optional values
            try:
                kwargs[step.name] = step.convert(value)
            except Exception as exc:
                raise ConversionError(step.name, exc) from exc
        return True


def plan(run: Callable[..., Any]) -> FastCall | None:
    """How run()'s inputs are converted: a FastCall, or None for inference-schema's decorated run(). Logs which."""
    reason = _unsupported_library()
    found = None if reason else _layers(run)
    if found is None:
        logger.info("Typed inputs are converted by inference-schema: %s.", reason or "run() has layers not known here")
        return None
    layers, target = found
    steps = []
    for name, param_type, optional in layers:
        convert, how = converter(param_type, name)
        logger.info("Input %r is converted by %s.", name, how)
        steps.append(Step(name, optional, convert))
    return FastCall(target, tuple(steps))


def _unsupported_library() -> str | None:
    try:
        version = importlib.metadata.version("inference-schema")
    except importlib.metadata.PackageNotFoundError:
        return "its version is unknown"
    if version not in TESTED_VERSIONS or _INPUT_CODE is None or _OUTPUT_CODE is None:
        return f"inference-schema {version} is not a release this server was tested with"
    if _library_convert is None:
        return f"inference-schema {version} has no _deserialize_input_argument"
    return None


def _layers(run: Callable[..., Any]) -> tuple[list[tuple[str, Any, bool]], Callable[..., Any]] | None:
    """run()'s converting layers, outermost first, and the function under them; None if any layer is unknown."""
    layers: list[tuple[str, Any, bool]] = []
    current: Any = run
    while _is_schema_layer(current):
        wrapper = current._self_wrapper
        code: CodeType = wrapper.__code__
        if code is _INPUT_CODE:
            cells = (cell.cell_contents for cell in wrapper.__closure__)
            fields = dict(zip(code.co_freevars, cells, strict=True))
            if not _LAYER_FIELDS <= fields.keys():
                return None
            if fields["convert_to_provided_type"]:
                layers.append((fields["param_name"], fields["param_type"], bool(fields["optional"])))
        current = current.__wrapped__
    if current is run or len({name for name, _, _ in layers}) != len(layers):
        return None  # a decorator of the user's above the schema layers, or two layers for one parameter
    below: Any = current
    for _ in range(100):  # a schema layer under a decorator of the user's: its conversion is not ours to do
        below = getattr(below, "__wrapped__", None)
        if below is None:
            return layers, current
        if _is_schema_layer(below):
            return None
    return None


def _is_schema_layer(obj: Any) -> bool:
    code = getattr(getattr(obj, "_self_wrapper", None), "__code__", None)
    return (code is _INPUT_CODE or code is _OUTPUT_CODE) and getattr(obj, "_self_enabled", None) is None


def converter(param_type: Any, name: str) -> tuple[Converter, str]:
    """The converter for one parameter, and how it converts (for the log)."""

    convert = _library_convert
    if convert is None:
        raise RuntimeError("inference-schema's _deserialize_input_argument is missing: plan() should not get here")

    def library(value: Any) -> Any:
        return convert(value, param_type, name)

    fast, how = fast_converter(param_type, library)
    if fast is None:
        return library, f"inference-schema ({how})"
    return fast, f"scoring_runtime ({how})"


def fast_converter(param_type: Any, library: Converter) -> tuple[Converter | None, str]:
    """Our converter for a parameter type, handing what it does not cover to `library`; or None and the reason."""
    kind = type(param_type)
    if kind is NumpyParameterType:
        return _numpy(param_type, library)
    if kind is PandasParameterType:
        return convert_pandas.converter(param_type, library)
    if kind is StandardPythonParameterType:
        return _standard(param_type, library)
    return None, f"parameter type {kind.__name__}"


def _numpy(param_type: NumpyParameterType, library: Converter) -> tuple[Converter | None, str]:
    sample: np.ndarray[Any, Any] = param_type.sample_input
    dtype = sample.dtype
    # Only structured, datetime and timedelta dtypes get inference-schema's per-item pre-processing; for every other
    # dtype it makes exactly the np.array call made here.
    if dtype.names is not None or dtype.subdtype is not None or dtype.kind in "mM":
        return None, f"numpy dtype {dtype}"
    typed: np.dtype[Any] | None = dtype if param_type.enforce_column_type else None
    dims = sample.ndim
    tail = sample.shape[1:]
    check_shape = bool(param_type.enforce_shape)

    def convert(value: Any) -> Any:
        if type(value) is not list:
            return library(value)
        try:
            array = np.array(value, dtype=typed)
        except Exception:
            return library(value)  # the same call fails there, with inference-schema's traceback
        if check_shape and (array.ndim != dims or array.shape[1:] != tail):
            return library(value)  # for its error message
        return array

    shape = ", ".join(["n", *map(str, tail)])
    return convert, f"numpy {dtype if typed is not None else 'inferred dtype'}, shape ({shape})"


def _standard(param_type: StandardPythonParameterType, library: Converter) -> tuple[Converter | None, str]:
    # inference-schema returns a value that already has the sample's type as it is, and converts or rejects others.
    sample_type: type = param_type.sample_data_type
    accepted: type | tuple[type, ...] = sample_type
    if sample_type is dict:
        if param_type.sample_data_type_map:
            return None, "nested parameter types"
    elif sample_type in (list, tuple):
        if param_type.sample_data_type_list:
            return None, "nested parameter types"
        accepted = (list, tuple)

    def convert(value: Any) -> Any:
        return value if isinstance(value, accepted) else library(value)

    return convert, f"standard {sample_type.__name__}"
