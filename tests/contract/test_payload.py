from __future__ import annotations

import datetime
import json
import math
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st

from scoring_runtime.contract import payload
from scoring_runtime.errors import BadRequest, InternalError, UnsupportedMediaType


def test_query_values_are_json_where_possible() -> None:
    query = b"a=1&b=1.2&c=null&d=%5B1%2C2%5D&e=%7B%22X%22%3A%22Y%22%7D&f=abc&g=true&h=NaN&a=2&a=x&empty="
    assert payload.query_values(query) == {
        "a": [1, 2, "x"],
        "b": 1.2,
        "c": None,
        "d": [1, 2],
        "e": {"X": "Y"},
        "f": "abc",
        "g": True,
        "h": pytest.approx(float("nan"), nan_ok=True),
        "empty": "",
    }


def test_plain_input_get_is_the_reference_json_text() -> None:
    assert payload.plain_input("GET", b"", b"a=1&e=null") == '{"a": 1, "e": null}'
    assert payload.plain_input("GET", b"ignored", b"") == "{}"


def test_plain_input_post_is_the_body_text() -> None:
    assert payload.plain_input("POST", b"\xef\xbb\xbfnot json {", b"q=1") == "\ufeffnot json {"
    with pytest.raises(BadRequest) as info:
        payload.plain_input("POST", b"\xff", b"")
    assert info.value.message == (
        "Input cannot be decoded as UTF-8: 'utf-8' codec can't decode byte 0xff in position 0: invalid start byte"
    )


@pytest.mark.parametrize(
    "content_type", ["application/json", "application/json; charset=utf-8", "application/vnd.x+json"]
)
def test_typed_input_accepts_json_types(content_type: str) -> None:
    assert payload.typed_input("POST", b'{"a": 1}', b"", content_type) == {"a": 1}


@pytest.mark.parametrize("content_type", [None, "", "text/plain", "application/octet-stream", "text/json"])
def test_typed_input_rejects_other_types(content_type: str | None) -> None:
    with pytest.raises(UnsupportedMediaType, match="^Expects Content-Type to be application/json$"):
        payload.typed_input("POST", b'{"a": 1}', b"", content_type)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "POST body is empty. Expecting a JSON dictionary."),
        (b"[1, 2]", "POST body should be a JSON dictionary."),
        (b"null", "POST body should be a JSON dictionary."),
        (
            b"{",
            "POST body could not be decoded as JSON: "
            "Expecting property name enclosed in double quotes: line 1 column 2 (char 1)",
        ),
        (b"\xff\xfe\xfd", "POST body could not be decoded as JSON: "),
    ],
)
def test_typed_input_errors_have_the_reference_texts(body: bytes, message: str) -> None:
    with pytest.raises(BadRequest) as info:
        payload.typed_input("POST", body, b"", "application/json")
    assert info.value.message.startswith(message)


def test_json_fallback_accepts_what_the_reference_accepts() -> None:
    assert math.isnan(payload.parse_json(b'{"x": NaN}')["x"])
    assert payload.parse_json(b'\xef\xbb\xbf{"x": 1}') == {"x": 1}
    assert payload.parse_json('{"x": "é"}'.encode("utf-16")) == {"x": "é"}
    # Documented difference: integers beyond 64 bits arrive as floats (orjson), not as exact ints.
    assert payload.parse_json(b'{"x": 123456789012345678901234567890}') == {"x": 1.2345678901234568e29}


def test_run_arguments_by_name() -> None:
    data = {"a": 1, "extra": 2}
    assert payload.run_arguments(data, ("a", "b"), frozenset({"a"})) == {"a": 1}
    with pytest.raises(BadRequest, match=r"^A value is not provided for the 'b' parameter\.$"):
        payload.run_arguments(data, ("a", "b"), frozenset({"a", "b"}))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, {}),
        ({"a": (1, 2)}, {"a": [1, 2]}),
        ("hello", "hello"),
        ({"x": float("nan"), "y": float("-inf")}, {"x": None, "y": None}),
        (np.array([[1.0, np.nan]]), [[1.0, None]]),
        (np.arange(6).reshape(2, 3)[:, 1], [1, 4]),
        (np.array(["a", "b"], dtype=object), ["a", "b"]),
        ({"f": np.float32(1.5), "i": np.int64(3), "b": np.bool_(True)}, {"f": 1.5, "i": 3, "b": True}),
        (pd.DataFrame({"a": [1, 2], "b": ["x", None]}), [{"a": 1, "b": "x"}, {"a": 2, "b": None}]),
        (pd.Series([1.5, 2.5]), [1.5, 2.5]),
        (
            pd.DataFrame({"t": pd.to_datetime(pd.Series(["2020-01-01", None]))}),
            [{"t": "2020-01-01T00:00:00"}, {"t": None}],
        ),
        (datetime.date(2020, 1, 2), "2020-01-02"),
        (2**70, 2**70),
    ],
)
def test_encode_result_json(value: object, expected: object) -> None:
    body, media_type = payload.encode_result(value)
    assert media_type == "application/json"
    assert json.loads(body) == expected


def test_encode_result_bytes_are_octet_stream() -> None:
    assert payload.encode_result(b"\x00\xff") == (b"\x00\xff", "application/octet-stream")
    assert payload.encode_result(bytearray(b"ab")) == (b"ab", "application/octet-stream")


@pytest.mark.parametrize("value", [{1, 2}, object(), {"nested": {1}}])
def test_encode_result_unencodable_is_internal_error(value: object) -> None:
    with pytest.raises(InternalError):
        payload.encode_result(value)


CELLS = {
    "int64": st.integers(-(2**63), 2**63 - 1),
    "uint64": st.integers(0, 2**64 - 1),
    "float64": st.floats(),
    "float32": st.floats(width=32),
    "float16": st.floats(width=16),
    "bool": st.booleans(),
    "str": st.none() | st.text(max_size=3),
    "object": st.one_of(
        st.none(), st.integers(), st.floats(), st.text(max_size=2), st.builds(np.float32, st.floats(width=32))
    ),
    "Int64": st.none() | st.integers(-5, 5),
    "category": st.sampled_from(["a", "b"]),
    "datetime64[ns]": st.none() | st.datetimes(datetime.datetime(1970, 1, 1), datetime.datetime(2200, 1, 1)),
}


@st.composite
def frames(draw: st.DrawFn) -> pd.DataFrame:
    rows = draw(st.integers(0, 4))
    kinds = draw(st.lists(st.sampled_from(sorted(CELLS)), min_size=1, max_size=4))
    labels = draw(st.lists(st.sampled_from(["a", "b", "c", 0, 1]), min_size=len(kinds), max_size=len(kinds)))
    columns = [pd.Series([draw(CELLS[kind]) for _ in range(rows)], dtype=kind) for kind in kinds]
    frame: pd.DataFrame = pd.concat(columns, axis=1, keys=range(len(columns))).set_axis(labels, axis=1)
    return frame


@settings(max_examples=200, derandomize=True, database=None, deadline=None)
@given(frames())
def test_frames_encode_as_their_to_dict_records(frame: pd.DataFrame) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # to_dict warns about repeated labels, whichever path calls it
        assert payload.encode_result(frame) == payload.encode_result(frame.to_dict(orient="records"))


def test_json_nested_deeper_than_python_recurses_is_the_clients_error() -> None:
    deep = b"[" * 200_000 + b"]" * 200_000
    with pytest.raises(BadRequest, match="POST body could not be decoded as JSON: maximum recursion depth"):
        payload.parse_json(deep)
    with pytest.raises(BadRequest, match="^The inference request is not valid JSON: maximum recursion depth"):
        payload.parse_json(memoryview(deep), problem="The inference request is not valid JSON")
