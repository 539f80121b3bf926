"""Request bodies and query strings into run() arguments; run() results into response bytes.

JSON is parsed once, with orjson. Only when orjson refuses a body does the standard library look at it, so that
what the reference accepts (NaN, byte-order marks, UTF-16/32, huge integers) is still accepted and what it rejects
gets the reference's exact error text.

Result encoding (one policy, documented in docs/compatibility.md): JSON via orjson; NaN and infinities become
`null`; numpy arrays and scalars become lists and numbers; a pandas DataFrame becomes a list of records and a
Series a list of values; `None` becomes `{}`; bytes are sent as application/octet-stream.
"""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl

import orjson

from scoring_runtime.errors import BadRequest, InternalError, UnsupportedMediaType

logger = logging.getLogger("azmlinfsrv")

JSON_TYPE = "application/json"
OCTET_STREAM = "application/octet-stream"
_ORJSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


def plain_input(method: str, body: bytes, query_string: bytes) -> str:
    """The text an undecorated run(data) gets: the POST body, or the GET query as JSON text."""
    if method == "GET":
        return json.dumps(query_values(query_string))
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest(f"Input cannot be decoded as UTF-8: {exc}") from None


def query_values(query_string: bytes) -> dict[str, Any]:
    """Query parameters, each value read as JSON where it is JSON (`1` -> 1, `abc` -> "abc"); repeated keys: lists."""
    values: dict[str, Any] = {}
    repeated: set[str] = set()
    for key, text in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        value = _json_or_text(text)
        if key not in values:
            values[key] = value
        elif key in repeated:
            values[key].append(value)
        else:
            values[key] = [values[key], value]
            repeated.add(key)
    return values


def _json_or_text(text: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        try:
            return json.loads(text)
        except ValueError:
            return text


def typed_input(method: str, body: bytes, query_string: bytes, content_type: str | None) -> dict[str, Any]:
    """The JSON object (POST) or query parameters (GET) whose keys are run()'s parameter names."""
    if method == "GET":
        return query_values(query_string)
    if not is_json_type(content_type):
        raise UnsupportedMediaType("Expects Content-Type to be application/json")
    if not body:
        raise BadRequest("POST body is empty. Expecting a JSON dictionary.")
    data = parse_json(body)
    if not isinstance(data, dict):
        raise BadRequest("POST body should be a JSON dictionary.")
    return data


def model_input(method: str, body: bytes, query_string: bytes) -> Any:
    """What a model served without a script is given: the JSON body (any JSON value), or the GET query's values."""
    if method == "GET":
        return query_values(query_string)
    if not body:
        raise BadRequest('POST body is empty. Expecting JSON, such as {"data": [[...]]}.')
    return parse_json(body)


def mimetype_of(content_type: str | None) -> str:
    """`Application/JSON; charset=utf-8` -> `application/json`; no Content-Type -> ``."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def is_json_type(content_type: str | None) -> bool:
    if not content_type:
        return False
    mimetype = mimetype_of(content_type)
    return mimetype == JSON_TYPE or (mimetype.startswith("application/") and mimetype.endswith("+json"))


def parse_json(body: bytes | memoryview, *, problem: str = "POST body could not be decoded as JSON") -> Any:
    """`body` as JSON; BadRequest `problem: <the standard library's reason>` when it is not. /score keeps the
    reference's text, the Open Inference Protocol says so in its own words."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        pass
    try:
        # The standard library reads bytes, not a view (a request header is a view of the body).
        return json.loads(bytes(body))
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        # RecursionError: nested deeper than the standard library recurses (orjson stops at 1024 levels). The
        # reference answers that with a 500; it is the body at fault, not the server.
        raise BadRequest(f"{problem}: {exc}") from None


def run_arguments(data: dict[str, Any], parameters: Iterable[str], required: frozenset[str]) -> dict[str, Any]:
    """Pick run()'s parameters out of the request's JSON object by name; extra keys are ignored.

    A parameter with a default that the request lacks is left out here: UserScript.call passes its default.
    """
    kwargs = {}
    for name in parameters:
        if name in data:
            kwargs[name] = data[name]
        elif name in required:
            raise BadRequest(f"A value is not provided for the {name!r} parameter.")
    return kwargs


def encode_result(value: Any) -> tuple[bytes, str]:
    """run()'s return value as (body, media type)."""
    if value is None:
        return b"{}", JSON_TYPE
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value), OCTET_STREAM
    try:
        return orjson.dumps(value, default=_to_builtin, option=_ORJSON_OPTIONS), JSON_TYPE
    except TypeError as exc:
        reason = exc
    try:
        # orjson stops at integers beyond 64 bits, which the standard library writes.
        return json.dumps(value, default=_to_builtin, allow_nan=False).encode(), JSON_TYPE
    except (TypeError, ValueError):
        pass
    logger.error("run() returned a value that cannot be encoded as JSON (%s): %s", type(value).__name__, reason)
    raise InternalError()


_PLAIN_CELLS = frozenset({int, float, bool, str, type(None)})


def _records(frame: Any) -> list[dict[Any, Any]]:
    """`frame.to_dict(orient="records")`, built several times faster when every cell is a plain Python scalar."""
    if frame.columns.is_unique:
        rows = frame.to_numpy(dtype=object).tolist()
        # to_dict gives the same scalars for these; other cells (numpy scalars in object columns, timestamps,
        # pd.NA ...) may differ, so those frames take to_dict's own path.
        if set(map(type, itertools.chain.from_iterable(rows))) <= _PLAIN_CELLS:
            labels = frame.columns.tolist()
            return [dict(zip(labels, row, strict=True)) for row in rows]
    records: list[dict[Any, Any]] = frame.to_dict(orient="records")
    return records


def _to_builtin(value: Any) -> Any:
    """orjson's fallback for what it does not encode itself."""
    module = type(value).__module__
    if module.startswith("pandas"):
        if type(value).__name__ in ("NAType", "NaTType"):
            return None
        if hasattr(value, "to_dict") and hasattr(value, "columns"):
            return _records(value)
        if hasattr(value, "tolist"):
            return value.tolist()
        if hasattr(value, "isoformat"):
            return value.isoformat()
    if module == "numpy" and hasattr(value, "tolist"):
        converted = value.tolist()
        # tolist() keeps the numpy scalars Python has no type for (longdouble, clongdouble): handed back, each would
        # come here again, until the encoder gives up on the recursion.
        if type(converted).__module__ != "numpy":
            return converted
    raise TypeError(f"Type is not JSON serializable: {type(value).__name__}")
