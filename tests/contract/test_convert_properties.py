"""Property tests: our converters and inference-schema's give the same arrays, frames and errors.

Each example builds a parameter type from a generated sample, then feeds the same generated JSON value (valid or
not) to inference-schema's `_deserialize_input_argument` and to our converter. Both must raise the same exception
type with the same message (the message is what the client sees), or both return bit-for-bit equal results with
equal dtypes, shapes, labels and index types. A counting stand-in for the library also shows that well-formed
inputs are converted by us and not handed back to inference-schema.

The same tests were run against pandas 2.3 (object text columns, date-like labels re-typed by read_json) and with
pyarrow installed (pandas 3's str dtype then stores its text in Arrow); neither is this project's test environment.
"""

from __future__ import annotations

import copy
import json
import sys
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from inference_schema.parameter_types.numpy_parameter_type import NumpyParameterType
from inference_schema.parameter_types.pandas_parameter_type import PandasParameterType
from inference_schema.schema_decorators import _deserialize_input_argument

from scoring_runtime.contract import convert, convert_pandas

EXAMPLES = settings(
    max_examples=150,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# JSON scalars as orjson gives them, plus what only the standard library's parser lets through (NaN, infinities,
# lone surrogates), and the edges of int64.
INTS = st.one_of(
    st.integers(-5, 5), st.integers(-(2**70), 2**70), st.sampled_from([2**53 + 1, 2**63 - 1, 2**63, -(2**63), 300])
)
FLOATS = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.floats(-1e6, 1e6).map(lambda f: round(f, 3)),
    st.sampled_from([0.1, -0.0, 1e16, 2.5e-308, 1e308, 3.4e38, 7e40, float("nan"), float("inf")]),
)
TEXT = st.one_of(
    st.sampled_from(["x", "", "1", "1.5", "true", "2020-01-01", "Jan", "é", "\ud800", "a\udfffb"]), st.text(max_size=4)
)
SCALARS = st.one_of(INTS, FLOATS, st.booleans(), TEXT, st.none())
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3))


class Library:
    """inference-schema's conversion for one parameter type, counting how often our converter hands it a value."""

    def __init__(self, param_type: Any) -> None:
        self.param_type = param_type
        self.calls = 0

    def __call__(self, value: Any) -> Any:
        self.calls += 1
        return _deserialize_input_argument(value, self.param_type, "p")


def outcome(convert: Callable[[Any], Any], value: Any) -> tuple[str, Any, set[tuple[type, str]]]:
    """("ok", result, warnings) or ("error", (type, message), warnings) for a private copy of `value`."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result: tuple[str, Any] = ("ok", convert(copy.deepcopy(value)))
        except Exception as exc:
            result = ("error", (type(exc), str(exc)))
    return (*result, {(w.category, str(w.message)) for w in caught})


def assert_same(ours: tuple[str, Any, Any], theirs: tuple[str, Any, Any], equal: Callable[[Any, Any], None]) -> None:
    assert ours[0] == theirs[0], (ours, theirs)
    if ours[0] == "error":
        assert ours[1] == theirs[1]
    else:
        equal(ours[1], theirs[1])
    # Our path may warn again where it tried and then handed the value over; it never warns differently.
    assert ours[2] == theirs[2] or (ours[2] >= theirs[2] and ours[0] == "error")


# ---- numpy ---------------------------------------------------------------------------------------------------------

NUMPY_DTYPES = ["float64", "float32", "float16", "int64", "int32", "uint8", "bool", "object", "<U3", "S2"]


def numpy_value(dtype: str) -> st.SearchStrategy[Any]:
    kind = np.dtype(dtype).kind
    native = {"f": FLOATS | INTS, "i": INTS, "u": INTS, "b": st.booleans(), "U": TEXT, "S": TEXT}.get(kind, SCALARS)
    return st.one_of(native, native, native, SCALARS)


@st.composite
def numpy_cases(draw: st.DrawFn) -> tuple[NumpyParameterType, Any]:
    dtype = draw(st.sampled_from(NUMPY_DTYPES))
    shape = draw(st.sampled_from([(2,), (1, 3), (2, 2, 2), (1, 0)]))
    sample = np.zeros(shape, dtype=dtype)
    param_type = NumpyParameterType(sample, enforce_column_type=draw(st.booleans()), enforce_shape=draw(st.booleans()))
    value = numpy_value(dtype)
    # Mostly arrays of the sample's shape or one dimension off; sometimes ragged, or not a list at all.
    dims = [draw(st.integers(0, 4))] + [d if draw(st.integers(0, 5)) else draw(st.integers(0, 3)) for d in shape[1:]]
    if draw(st.integers(0, 4)) == 0:
        dims = dims[: draw(st.integers(0, len(dims)))] or [draw(st.integers(0, 3))]

    def nested(depth: int) -> Any:
        if depth == len(dims):
            return draw(value)
        count = dims[depth] if draw(st.integers(0, 9)) else draw(st.integers(0, 3))
        return [nested(depth + 1) for _ in range(count)]

    data = nested(0) if draw(st.integers(0, 9)) else draw(JSON)
    return param_type, data


def equal_arrays(ours: Any, theirs: Any) -> None:
    assert type(ours) is type(theirs) is np.ndarray
    assert (ours.dtype, ours.shape) == (theirs.dtype, theirs.shape)
    if ours.dtype == object:
        assert [(type(x), x) for x in ours.ravel().tolist()] == [(type(x), x) for x in theirs.ravel().tolist()]
    else:
        assert ours.tobytes() == theirs.tobytes()


@EXAMPLES
@given(numpy_cases())
def test_numpy_converter_matches_inference_schema(case: tuple[NumpyParameterType, Any]) -> None:
    param_type, data = case
    library = Library(param_type)
    fast, _ = convert.fast_converter(param_type, library)
    assert fast is not None
    assert_same(outcome(fast, data), outcome(library, data), equal_arrays)


def test_numpy_well_formed_input_is_converted_without_inference_schema() -> None:
    param_type = NumpyParameterType(np.array([[1.0, 2.0, 3.0]]))
    library = Library(param_type)
    fast, _ = convert.fast_converter(param_type, library)
    assert fast is not None
    assert fast([[1, 2.5, 3.0], [4.0, 5.0, 6.0]]).tolist() == [[1.0, 2.5, 3.0], [4.0, 5.0, 6.0]]
    assert library.calls == 0


@pytest.mark.parametrize("dtype", ["datetime64[s]", "timedelta64[s]", [("a", "f8"), ("b", "i8")]])
def test_numpy_dtypes_with_item_preprocessing_stay_with_inference_schema(dtype: Any) -> None:
    fast, reason = convert.fast_converter(NumpyParameterType(np.zeros(2, dtype=dtype)), Library(None))
    assert fast is None and reason.startswith("numpy dtype")


# ---- pandas --------------------------------------------------------------------------------------------------------

PANDAS_DTYPES = ["float64", "float32", "int64", "int32", "uint8", "bool", "str", "object"]
LABELS = ["a", "b", "name", "x1", "date", "created_at", "Timestamp_x", "1", "2020-01-01", "Jan", "é"]


def frame_value(dtype: str, noisy: bool) -> st.SearchStrategy[Any]:
    native = {
        "float64": FLOATS | INTS,
        "float32": FLOATS | INTS,
        "int64": INTS,
        "int32": INTS,
        "uint8": INTS,
        "bool": st.booleans(),
    }.get(dtype, TEXT)
    return st.one_of(native, native, native, SCALARS, JSON) if noisy else native


@st.composite
def pandas_cases(draw: st.DrawFn) -> tuple[PandasParameterType, Any]:
    labels = draw(st.lists(st.sampled_from(LABELS), min_size=1, max_size=4, unique=True))
    dtypes = [draw(st.sampled_from(PANDAS_DTYPES)) for _ in labels]
    first = {"float64": 0.5, "float32": 0.5, "int64": 1, "int32": 1, "uint8": 1, "bool": True}
    sample = pd.DataFrame(
        {label: pd.Series([first.get(dtype, "x")], dtype=dtype) for label, dtype in zip(labels, dtypes, strict=True)}
    )
    orient = draw(st.sampled_from(["records", "records", "split"]))
    param_type = PandasParameterType(
        sample, enforce_column_type=draw(st.booleans()), enforce_shape=draw(st.booleans()), orient=orient
    )
    noisy = draw(st.booleans())  # else every value is of its column's kind, as most clients send
    rows = []
    for _ in range(draw(st.integers(0, 5))):
        row = {label: draw(frame_value(dtype, noisy)) for label, dtype in zip(labels, dtypes, strict=True)}
        if draw(st.integers(0, 9)) == 0:
            row.pop(draw(st.sampled_from(labels)))
        if draw(st.integers(0, 9)) == 0:
            row[draw(st.sampled_from(LABELS))] = draw(SCALARS)
        if draw(st.integers(0, 9)) == 0:
            row = dict(reversed(row.items()))
        rows.append(row)
    if orient == "records":
        data: Any = rows
        if rows and draw(st.integers(0, 19)) == 0:
            data[0] = draw(JSON)
    else:
        data = {"columns": list(labels), "data": [[row.get(label) for label in labels] for row in rows]}
        if draw(st.booleans()):
            data["index"] = draw(
                st.one_of(
                    st.just(list(range(len(rows)))),
                    st.lists(INTS, min_size=len(rows), max_size=len(rows)),
                    # labels that read_json takes for epoch seconds when all of them are large enough
                    st.lists(st.integers(31536000 - 2, 2**40), min_size=len(rows), max_size=len(rows)),
                    st.lists(SCALARS, max_size=4),
                )
            )
        if draw(st.integers(0, 9)) == 0:
            data["columns"] = draw(st.lists(st.sampled_from(LABELS), max_size=4))
        if draw(st.integers(0, 19)) == 0:
            data[draw(st.sampled_from(["extra", "data"]))] = draw(JSON)
    if draw(st.integers(0, 19)) == 0:
        data = draw(JSON)
    return param_type, data


def equal_frames(ours: Any, theirs: Any) -> None:
    assert type(ours) is type(theirs) is pd.DataFrame
    pd.testing.assert_frame_equal(ours, theirs, check_exact=True, check_index_type=True, check_column_type=True)
    assert type(ours.index) is type(theirs.index)
    for label in theirs.columns:
        if isinstance(theirs[label].dtype, np.dtype) and theirs[label].dtype.kind == "f":
            assert ours[label].to_numpy().tobytes() == theirs[label].to_numpy().tobytes()  # even -0.0 and NaN bits


@EXAMPLES
@given(pandas_cases())
def test_pandas_converter_matches_inference_schema(case: tuple[PandasParameterType, Any]) -> None:
    param_type, data = case
    library = Library(param_type)
    fast, _ = convert.fast_converter(param_type, library)
    if fast is None:
        return  # left to inference-schema (date-like labels on pandas < 3.1, or a label read_json re-types)
    assert_same(outcome(fast, data), outcome(library, data), equal_frames)


@st.composite
def clean_pandas_cases(draw: st.DrawFn) -> tuple[PandasParameterType, Any]:
    """Well-formed inputs: every column holds values of its sample's kind, as a client following the schema sends."""
    labels = draw(st.lists(st.sampled_from(["a", "b", "name", "x1", "é"]), min_size=1, max_size=4, unique=True))
    dtypes = [draw(st.sampled_from(PANDAS_DTYPES)) for _ in labels]
    first = {"float64": 0.5, "float32": 0.5, "int64": 1, "int32": 1, "uint8": 1, "bool": True}
    sample = pd.DataFrame(
        {label: pd.Series([first.get(d, "x")], dtype=d) for label, d in zip(labels, dtypes, strict=True)}
    )
    orient = draw(st.sampled_from(["records", "split"]))
    param_type = PandasParameterType(sample, orient=orient)
    clean = {
        "float64": st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(2**52), 2**52),
        "float32": st.floats(-1e30, 1e30),
        "int64": st.integers(-(2**63), 2**63 - 1),
        "int32": st.integers(-(2**31), 2**31 - 1),
        "uint8": st.integers(0, 255),
        "bool": st.booleans(),
    }
    rows = [
        [draw(clean.get(d, st.text(st.characters(exclude_categories=["Cs"]), max_size=5))) for d in dtypes]
        for _ in range(draw(st.integers(1, 6)))
    ]
    if orient == "records":
        return param_type, [dict(zip(labels, row, strict=True)) for row in rows]
    return param_type, {"columns": list(labels), "index": list(range(len(rows))), "data": rows}


@EXAMPLES
@given(clean_pandas_cases())
def test_pandas_well_formed_input_is_converted_without_inference_schema(
    case: tuple[PandasParameterType, Any],
) -> None:
    param_type, data = case
    library = Library(param_type)
    fast, reason = convert.fast_converter(param_type, library)
    assert fast is not None, reason
    library.calls = 0  # the load-time check of a sample row
    ours = outcome(fast, data)
    assert library.calls == 0
    assert_same(ours, outcome(library, data), equal_frames)


def test_pandas_floats_are_the_ones_inference_schema_reads() -> None:
    # read_json's number parser (no precise_float) moves some floats by one bit; run() gets the same as with it.
    sample = pd.DataFrame({"a": [0.5]})
    param_type = PandasParameterType(sample)
    fast, _ = convert.fast_converter(param_type, Library(param_type))
    assert fast is not None
    sent = [{"a": value} for value in np.random.default_rng(0).uniform(-1000, 1000, 2000).tolist()]
    ours, theirs = fast(json.loads(json.dumps(sent))), _deserialize_input_argument(sent, param_type, "p")
    assert ours["a"].to_numpy().tobytes() == theirs["a"].to_numpy().tobytes()
    assert (theirs["a"].to_numpy() != np.array([row["a"] for row in sent])).any()  # the bit does move


@pytest.mark.parametrize(
    ("sample", "options", "reason"),
    [
        (pd.DataFrame({"t": pd.to_datetime(["2020-01-01"])}), {}, "column 't' of dtype datetime64"),
        (pd.DataFrame({"c": pd.Categorical(["x"])}), {}, "column 'c' of dtype category"),
        (pd.DataFrame({"s": pd.array(["x"], dtype="string")}), {}, "column 's' of dtype string"),
        (pd.DataFrame({0: [1.0]}), {}, "column labels that are not distinct strings"),
        (pd.DataFrame({"a": [1.0]}), {"orient": "index"}, "pandas orient 'index'"),
        (pd.DataFrame({"a": [1.0]}), {"orient": "values"}, "pandas orient 'values'"),
        (pd.DataFrame({"1": [1.0]}), {}, "a sample row"),  # read_json turns the label into 1
    ],
)
def test_pandas_samples_left_to_inference_schema(sample: pd.DataFrame, options: dict[str, Any], reason: str) -> None:
    fast, why = convert.fast_converter(PandasParameterType(sample, **options), Library(None))
    assert fast is None and why.startswith(reason), why


SAMPLE = pd.DataFrame({"a": [0.5], "b": [1], "name": ["x"]})
SPLIT_ROWS = [[1.5, 2, "x"], [2.5, 3, "y"]]


@pytest.mark.parametrize(
    ("orient", "data"),
    [
        ("records", [{"a": 1.5, "b": 2, "name": "x"}, {"b": 3, "a": 2, "name": "y"}]),
        ("records", [{"b": 2, "a": 1.5, "name": "x"}]),  # read_json orders the columns as the first record does
        ("records", [{"a": 1.5, "b": 2, "name": "\ud800"}]),  # read_json drops a lone surrogate
        ("records", [{"a": float("nan"), "b": 2, "name": "x"}]),
        ("records", [{"a": 1.5, "b": None, "name": "x"}]),
        ("records", [{"a": 1.5, "b": 2.0, "name": "x"}]),
        ("records", [{"a": True, "b": True, "name": 1}]),
        ("records", [{"a": 1.5, "b": 2}]),
        ("records", [{"a": 1.5, "b": 2, "name": "x", "c": 1}]),
        ("records", []),
        ("records", {"a": 1}),
        ("split", {"columns": ["a", "b", "name"], "data": SPLIT_ROWS}),
        ("split", {"columns": ["a", "b", "name"], "index": [0, 1], "data": SPLIT_ROWS}),
        ("split", {"columns": ["a", "b", "name"], "index": [7, 5], "data": SPLIT_ROWS}),
        ("split", {"columns": ["a", "b", "name"], "index": [40000000, 50000000], "data": SPLIT_ROWS}),  # epoch secs
        ("split", {"columns": ["a", "b", "name"], "index": ["p", "q"], "data": SPLIT_ROWS}),
        ("split", {"columns": ["b", "a", "name"], "data": SPLIT_ROWS}),
        ("split", {"columns": ["a", "b", "name"], "data": SPLIT_ROWS, "extra": 1}),
        ("split", {"columns": ["a", "b", "name"], "data": []}),
    ],
)
def test_pandas_corpus_matches_inference_schema(orient: str, data: Any) -> None:
    param_type = PandasParameterType(SAMPLE, orient=orient)
    library = Library(param_type)
    fast, reason = convert.fast_converter(param_type, library)
    assert fast is not None, reason
    assert_same(outcome(fast, data), outcome(library, data), equal_frames)


def test_without_pandas_private_json_module_frames_stay_with_inference_schema(monkeypatch: pytest.MonkeyPatch) -> None:
    # The import is guarded: a pandas that moved the module loads, and its frames are converted by inference-schema.
    monkeypatch.setitem(sys.modules, "pandas.io.json._json", None)
    assert convert_pandas.private_json_module() is None
    monkeypatch.setattr(convert_pandas, "_ujson_loads", None)
    param_type = PandasParameterType(pd.DataFrame({"a": [0.5]}))
    fast, reason = convert.fast_converter(param_type, Library(param_type))
    assert fast is None and reason == f"pandas {pd.__version__} without the reader functions this server uses"
    monkeypatch.undo()
    assert convert_pandas.private_json_module() is not None
