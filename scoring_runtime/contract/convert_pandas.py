"""DataFrames for PandasParameterType inputs in the 'records' and 'split' orients, equal to inference-schema's.

inference-schema writes the parsed input back to JSON, reads it with `pd.read_json(orient=..., dtype=False)` and
casts the columns to the sample's dtypes. For inputs whose every column holds one kind of JSON scalar, that comes
down to: one column array per label (int64, float64, bool or text), cast to the sample's dtype, under the labels
and a RangeIndex. What read_json does besides is reproduced, not improved on:
* floats go through pandas' own JSON number parser without `precise_float`, which can differ from the sent value
  in the last bit; the same parser is used here so that run() sees the same floats;
* before pandas 3.1, columns with date-like names are re-typed as dates: such samples are left to inference-schema.
Every other input (nulls, mixed kinds, missing, extra or reordered columns, ...) goes to inference-schema itself.
"""

from __future__ import annotations

import importlib
import json
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd
from inference_schema.parameter_types.pandas_parameter_type import PandasParameterType


def private_json_module() -> ModuleType | None:
    """pandas' private JSON module, for the number parser read_json uses; None should a release move it, and then
    frames are left to inference-schema (converter() says why) and nothing else changes."""
    try:
        return importlib.import_module("pandas.io.json._json")
    except ImportError:
        return None


pandas_json = private_json_module()

Converter = Callable[[Any], Any]
Column = Callable[[list[Any]], Any]  # a column's values -> its array, or None when inference-schema must convert

_ujson_loads: Callable[[str], Any] | None = getattr(pandas_json, "ujson_loads", None)  # what read_json parses with
_from_arrays: Callable[..., pd.DataFrame] | None = getattr(pd.DataFrame, "_from_arrays", None)
_PANDAS_VERSION = tuple(int(part) for part in re.findall(r"\d+", pd.__version__)[:2])

_INT = frozenset({int})
_FLOAT = frozenset({float})
_NUMBER = frozenset({int, float})
_BOOL = frozenset({bool})
_STR = frozenset({str})
_MIN_STAMP = 31536000  # read_json tries an index whose labels are all above this as epoch seconds
_INT64_MIN = -(2**63)  # pandas' NaT marker among int64 values


def converter(param_type: PandasParameterType, library: Converter) -> tuple[Converter | None, str]:
    """A converter for the parameter, or None with the reason inference-schema keeps it."""
    if _ujson_loads is None or _from_arrays is None:
        return None, f"pandas {pd.__version__} without the reader functions this server uses"
    orient = param_type.orient
    if orient not in ("records", "split"):
        return None, f"pandas orient {orient!r}"
    if param_type.apply_column_names:
        return None, "apply_column_names"
    sample: pd.DataFrame = param_type.sample_input
    labels = tuple(sample.columns)
    if not labels or any(type(label) is not str for label in labels) or len(set(labels)) != len(labels):
        return None, "column labels that are not distinct strings"
    if _PANDAS_VERSION < (3, 1) and any(_date_like(label) for label in labels):
        return None, f"date-like column names, which pandas {pd.__version__} re-types"
    columns = []
    for label in labels:
        dtype = sample.dtypes[label] if param_type.enforce_column_type else None
        column = _column(dtype)
        if column is None:
            return None, f"column {label!r} of dtype {dtype}"
        columns.append(column)
    probe = _probe(orient, labels, sample, param_type.enforce_column_type)
    expected = _library_result(library, probe)
    if expected is None:
        return None, "a sample row inference-schema does not convert cleanly"
    layout = _Layout(labels, tuple(columns), expected.columns)
    build = layout.records if orient == "records" else layout.split

    if not _same(expected, build(probe)):
        return None, "a sample row this server converts differently"

    def convert(value: Any) -> Any:
        frame = build(value)
        return library(value) if frame is None else frame

    return convert, f"pandas {orient}, {len(labels)} columns"


def _date_like(label: str) -> bool:
    lower = label.lower()
    return (
        lower.endswith(("_at", "_time")) or lower.startswith("timestamp") or lower in ("modified", "date", "datetime")
    )


@dataclass(frozen=True)
class _Layout:
    """The sample's columns: their labels, how each is built, and the column index read_json gives them."""

    labels: tuple[str, ...]
    columns: tuple[Column, ...]
    template: pd.Index

    def records(self, value: Any) -> pd.DataFrame | None:
        # read_json orders the columns as the first record orders its keys.
        if type(value) is not list or not value or type(value[0]) is not dict or tuple(value[0]) != self.labels:
            return None
        width = len(self.labels)
        for row in value:
            if type(row) is not dict or len(row) != width:
                return None
        arrays = []
        for label, column in zip(self.labels, self.columns, strict=True):
            try:
                array = column([row[label] for row in value])
            except KeyError:
                return None
            if array is None:
                return None
            arrays.append(array)
        return self._frame(arrays, pd.RangeIndex(len(value)))

    def split(self, value: Any) -> pd.DataFrame | None:
        if type(value) is not dict or len(value) not in (2, 3) or len(value) == 3 and "index" not in value:
            return None
        labels, rows = value.get("columns"), value.get("data")
        if type(labels) is not list or tuple(labels) != self.labels or type(rows) is not list or not rows:
            return None
        width = len(self.labels)
        for row in rows:
            if type(row) is not list or len(row) != width:
                return None
        index = _split_index(value["index"], len(rows)) if "index" in value else pd.RangeIndex(len(rows))
        if index is None:
            return None
        arrays = []
        for position, column in enumerate(self.columns):
            array = column([row[position] for row in rows])
            if array is None:
                return None
            arrays.append(array)
        return self._frame(arrays, index)

    def _frame(self, arrays: list[Any], index: pd.Index) -> pd.DataFrame:
        assert _from_arrays is not None
        # A copy of the labels per frame: run() may rename them (Index.name is settable).
        return _from_arrays(arrays, columns=self.template.copy(), index=index, verify_integrity=False)


def _split_index(labels: Any, length: int) -> pd.Index | None:
    """An index of ints, kept as sent by read_json unless every label could be an epoch time."""
    if type(labels) is not list or len(labels) != length or set(map(type, labels)) != _INT:
        return None
    try:
        array = np.array(labels, dtype=np.int64)
    except OverflowError:
        return None
    if not ((array <= _MIN_STAMP) & (array != _INT64_MIN)).any():
        return None
    return pd.Index(array, copy=False)


def _column(dtype: Any) -> Column | None:
    """How a column for the sample dtype `dtype` (None: not enforced) is built from its JSON values."""
    if dtype is None:
        text = _text_column(pd.Series(["x"]).dtype)  # what pandas infers for strings, under today's options
        return None if text is None else _inferred(text)
    if isinstance(dtype, np.dtype):
        if dtype.kind == "f":
            return _cast(dtype, _NUMBER)
        if dtype.kind in "iu":
            return _cast(dtype, _INT)
        if dtype.kind == "b":
            return _cast(dtype, _BOOL)
    return _text_column(dtype)


def _inferred(text: Column) -> Column:
    def build(values: list[Any]) -> Any:
        kinds = set(map(type, values))
        return text(values) if kinds == _STR else _base(values, kinds)

    return build


def _cast(dtype: np.dtype[Any], accepted: frozenset[type]) -> Column:
    def build(values: list[Any]) -> Any:
        kinds = set(map(type, values))
        if not kinds <= accepted:
            return None
        array = _base(values, kinds)
        # inference-schema's astype, which pandas does with numpy's cast
        return array if array is None or array.dtype == dtype else array.astype(dtype)

    return build


def _base(values: list[Any], kinds: set[type]) -> np.ndarray[Any, Any] | None:
    """The column read_json holds for values of these kinds, before inference-schema's cast."""
    if kinds == _INT:
        try:
            return np.array(values, dtype=np.int64)
        except OverflowError:
            return None  # read_json keeps such ints as uint64 or objects
    if kinds == _FLOAT or kinds == _NUMBER:
        return _floats(values)
    if kinds == _BOOL:
        return np.array(values, dtype=np.bool_)
    return None


def _floats(values: list[Any]) -> np.ndarray[Any, Any] | None:
    assert _ujson_loads is not None
    try:
        reread = _ujson_loads(json.dumps(values, allow_nan=False))  # the floats read_json would see
    except ValueError:
        return None  # NaN or infinity (from a body only the standard library parsed), or an int beyond 64 bits
    return np.array(reread, dtype=np.float64)


def _text_column(dtype: Any) -> Column | None:
    if isinstance(dtype, np.dtype):
        if dtype.kind != "O":
            return None

        def objects(values: list[Any]) -> Any:
            return np.array(values, dtype=object) if set(map(type, values)) == _STR and _plain(values) else None

        return objects
    if not (isinstance(dtype, pd.StringDtype) and dtype.storage in ("python", "pyarrow") and _is_nan(dtype.na_value)):
        return None  # pandas 3's str dtype only: the pd.NA "string" dtype was not compared with inference-schema
    make = dtype.construct_array_type()._from_sequence  # type: ignore[attr-defined]

    def strings(values: list[Any]) -> Any:
        return make(values, dtype=dtype) if set(map(type, values)) == _STR and _plain(values) else None

    return strings


def _plain(values: list[str]) -> bool:
    """False for text with lone surrogates (only a body the standard library parsed has them), which read_json
    changes."""
    text = "".join(values)
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and value != value


def _probe(orient: str, labels: tuple[str, ...], sample: pd.DataFrame, enforced: bool) -> Any:
    """One row of JSON values of the kinds the columns take: run through both converters at load time."""
    row = []
    for label in labels:
        dtype = sample.dtypes[label]
        kind = dtype.kind if isinstance(dtype, np.dtype) and enforced else "O"
        row.append({"f": 0.5, "i": 1, "u": 1, "b": True}.get(kind, "x"))
    if orient == "records":
        return [dict(zip(labels, row, strict=True))]
    return {"columns": list(labels), "data": [row]}


def _library_result(library: Converter, probe: Any) -> pd.DataFrame | None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = library(json.loads(json.dumps(probe)))
        except Exception:
            return None
    return result if isinstance(result, pd.DataFrame) and not caught else None


def _same(expected: pd.DataFrame, got: pd.DataFrame | None) -> bool:
    if got is None:
        return False
    try:
        pd.testing.assert_frame_equal(got, expected, check_exact=True, check_index_type=True, check_column_type=True)
    except AssertionError:
        return False
    return type(got.index) is type(expected.index)
