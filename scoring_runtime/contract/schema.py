"""What inference-schema knows about run(), and telling its input-conversion errors from the user's errors."""

from __future__ import annotations

import copy
from collections.abc import Callable
from types import CodeType, TracebackType
from typing import Any

from inference_schema import schema_decorators, schema_util

_SCHEMA_MODULE = schema_decorators.__name__
_SCHEMA_PACKAGE = _SCHEMA_MODULE.partition(".")[0]
# The private function in which inference-schema converts one input (1.8). Read with a fallback: when a release
# renames it, conversion frames are recognised by their package and their `param_name` instead (see below).
_CONVERT_CODE: CodeType | None = getattr(
    getattr(schema_decorators, "_deserialize_input_argument", None), "__code__", None
)


def is_decorated(run: Callable[..., Any]) -> bool:
    return bool(schema_util.is_schema_decorated(run))


def swagger_schemas(run: Callable[..., Any]) -> tuple[dict[str, Any], dict[str, Any], frozenset[str]]:
    """run()'s input and output swagger schemas (deep copies), and the OpenAPI versions they can be written in.

    Versions are inference-schema's spelling: "2.0", "3.0", "3.1".
    """
    input_schema = copy.deepcopy(schema_util.get_input_schema(run))
    output_schema = copy.deepcopy(schema_util.get_output_schema(run))
    versions = set(schema_util.get_supported_versions(run))
    # inference-schema keeps only the outermost @input_schema's versions when several are stacked, so a
    # mixed-type list under another decorator would still claim Swagger 2; the check is redone on the whole example.
    if not (_homogeneous(input_schema.get("example")) and _homogeneous(output_schema.get("example"))):
        versions.discard("2.0")
    return input_schema, output_schema, frozenset(versions)


def _homogeneous(example: Any) -> bool:
    """True when every list in `example` holds items of one Python type (Swagger 2 has no mixed-type arrays)."""
    if isinstance(example, list):
        if example and any(type(item) is not type(example[0]) for item in example):
            return False
        return all(_homogeneous(item) for item in example)
    if isinstance(example, dict):
        return all(_homogeneous(value) for value in example.values())
    return True


def user_code(run: Callable[..., Any]) -> CodeType | None:
    """The code object of what runs once inference-schema has converted the inputs.

    The decorators are wrapt proxies whose wrapper function lives in inference_schema.schema_decorators; the
    first object below the last of them is the user's function (or a decorator of the user's under them).
    """
    # A decorator of the user's above the schema decorators runs before the conversion, so the whole __wrapped__
    # chain is walked and the object under the last schema layer is kept.
    current: Any = run
    below_schema: Any = run
    for _ in range(100):
        if current is None:
            break
        if getattr(getattr(current, "_self_wrapper", None), "__module__", None) == _SCHEMA_MODULE:
            below_schema = current.__wrapped__
        current = getattr(current, "__wrapped__", None)
    code = getattr(below_schema, "__code__", None)
    return code if isinstance(code, CodeType) else None


def conversion_failure(exc: BaseException, code: CodeType | None) -> str | None:
    """The parameter whose input inference-schema failed to convert, or None when `exc` came from user code.

    The conversion runs before the user's function is entered, so an exception raised under it has a traceback
    that passes through inference-schema's conversion and never through the user's code object.
    """
    if _CONVERT_CODE is None:
        return _conversion_failure_by_package(exc, code)
    parameter: str | None = None
    tb: TracebackType | None = exc.__traceback__
    while tb is not None:
        frame_code = tb.tb_frame.f_code
        if frame_code is code:
            return None
        if frame_code is _CONVERT_CODE and parameter is None:
            parameter = str(tb.tb_frame.f_locals.get("param_name"))
        tb = tb.tb_next
    return parameter


def _conversion_failure_by_package(exc: BaseException, code: CodeType | None) -> str | None:
    """The same, for a release without `_deserialize_input_argument`, from the frames of inference-schema's package
    that know a `param_name`: the outermost one that takes it as an argument (the conversion of one input, which may
    recurse into the names of nested parameters), or else the innermost (each decorator layer knows its own)."""
    converting: str | None = None
    innermost: str | None = None
    tb: TracebackType | None = exc.__traceback__
    while tb is not None:
        frame = tb.tb_frame
        frame_code = frame.f_code
        if frame_code is code:
            return None
        module = str(frame.f_globals.get("__name__", ""))
        if module.partition(".")[0] == _SCHEMA_PACKAGE and "param_name" in frame.f_locals:
            innermost = str(frame.f_locals["param_name"])
            if converting is None and "param_name" in frame_code.co_varnames[: frame_code.co_argcount]:
                converting = innermost
        tb = tb.tb_next
    return converting or innermost
