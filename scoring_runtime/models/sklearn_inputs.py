"""A scikit-learn model's input, checked before the model sees it: a /score body's rows or records, or Open
Inference Protocol tensors, turned into the array (or, for a model fitted on a DataFrame, the DataFrame) it takes.

Every problem is a BadRequest naming the row, column or tensor at fault, so a client never reads a numpy traceback.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from scoring_runtime.errors import BadRequest
from scoring_runtime.models.sklearn_signature import Facts

_SCALARS = (str, int, float, bool, type(None))


def from_data(data: Any, facts: Facts) -> Any:
    """The model's input from the body's `data`: a list of rows, or of `{"column": value}` records for a model fitted
    on a DataFrame."""
    if not isinstance(data, list):
        raise BadRequest(f'"data" must be a list of rows, e.g. {{"data": [[1.0, 2.0]]}}; got {_json_type(data)}')
    if not data:
        raise BadRequest('"data" is empty: send at least one row')
    rows = _records_as_rows(data, facts) if isinstance(data[0], dict) else _checked_rows(data, facts)
    if facts.text_features:
        # The model takes strings somewhere: each value goes to it as sent, for pandas (or numpy) to hold as it is.
        _check_scalars(rows, facts)
        if facts.feature_names is None:
            return np.array(rows, dtype=object)
        return pd.DataFrame(rows, columns=list(facts.feature_names))
    numbers = _numbers(rows, facts)
    return pd.DataFrame(numbers, columns=list(facts.feature_names)) if facts.feature_names is not None else numbers


def _checked_rows(data: list[Any], facts: Facts) -> list[Any]:
    first = data[0]
    if not isinstance(first, list):
        if all(isinstance(value, _SCALARS) for value in data):
            if facts.n_features == 1:
                hint = "this model takes one feature: send one list per value, e.g. [[1.0], [2.0], [3.0]]"
            else:
                width = f" of {facts.n_features} values" if facts.n_features is not None else ""
                hint = f"send one row as [[1.0, 2.0, ...]], a list holding one list{width}"
            raise BadRequest(
                f'"data" must be a list of rows, each a list of feature values, and this is a single flat list of '
                f"{len(data)}: {hint}"
            )
        raise BadRequest(f"row 0 is {_json_type(first)}, not a list of feature values")
    expected = facts.n_features if facts.n_features is not None else len(first)
    for index, row in enumerate(data):
        if not isinstance(row, list):
            mixed = " (rows and records cannot be mixed)" if isinstance(row, dict) else ""
            raise BadRequest(f"row {index} is {_json_type(row)}, not a list of feature values{mixed}")
        if len(row) != expected:
            if facts.n_features is not None and all(isinstance(r, list) and len(r) == len(row) for r in data):
                raise BadRequest(f"expected {expected} features per row, got {len(row)}")
            source = "the model takes" if facts.n_features is not None else "as row 0 has"
            raise BadRequest(f"row {index} has {len(row)} values, expected {expected} ({source} {expected} features)")
    return data


def _records_as_rows(data: list[Any], facts: Facts) -> list[list[Any]]:
    names = facts.feature_names
    if names is None:
        width = facts.n_features if facts.n_features is not None else "its"
        raise BadRequest(
            f"records ({{column: value}}) need a model fitted on a DataFrame, and this {facts.type_name} was fitted "
            f"without column names: send each row as a list of {width} feature values"
        )
    rows = []
    for index, record in enumerate(data):
        if not isinstance(record, dict):
            raise BadRequest(f"row {index} is {_json_type(record)}, not a record (rows and records cannot be mixed)")
        missing = [name for name in names if name not in record]
        if missing:
            raise BadRequest(f"record {index} lacks {_names(missing)}; the model takes {_names(names)}")
        if len(record) != len(names):
            extra = [key for key in record if key not in names]
            raise BadRequest(f"record {index} has unknown {_names(extra)}; the model takes {_names(names)}")
        rows.append([record[name] for name in names])
    return rows


def _numbers(rows: list[Any], facts: Facts) -> np.ndarray[Any, Any]:
    try:
        return np.asarray(rows, dtype=np.float64)
    except (ValueError, TypeError, OverflowError):
        pass
    for index, row in enumerate(rows):
        for column, value in enumerate(row):
            if not _is_number(value):
                raise BadRequest(
                    f"row {index}, {_column(column, facts)}: {_show(value)} is not a number, and this model takes "
                    "numbers only"
                )
    raise AssertionError("float64 conversion failed on numbers")  # every cell converts alone, so the rows would too


def _is_number(value: Any) -> bool:
    try:
        return np.asarray(value, dtype=np.float64).ndim == 0
    except (ValueError, TypeError, OverflowError):
        return False


def _check_scalars(rows: list[list[Any]], facts: Facts) -> None:
    for index, row in enumerate(rows):
        for column, value in enumerate(row):
            if not isinstance(value, _SCALARS):
                raise BadRequest(f"row {index}, {_column(column, facts)}: {_show(value)} is not a single value")


def from_tensors(inputs: Mapping[str, np.ndarray[Any, Any]], facts: Facts) -> Any:
    """The model's input from decoded V2 tensors: one tensor of shape [rows, features] (or [rows] for a model of one
    feature), or, for a model fitted on a DataFrame, one tensor per column, named after it, of shape [rows] or
    [rows, 1]. BYTES elements of string columns are decoded from UTF-8."""
    if not inputs:
        raise BadRequest("no input tensors: this model takes one of shape [rows, features]")
    names = facts.feature_names
    if names is not None and (len(inputs) > 1 or next(iter(inputs)) in names):
        return _per_column(inputs, facts, names)
    if len(inputs) > 1:
        raise BadRequest(f"this model takes one input tensor of shape [rows, features]; got {_names(list(inputs))}")
    ((name, tensor),) = inputs.items()
    array = np.asarray(tensor)
    width = facts.n_features
    if array.ndim == 1 and width == 1:
        array = array.reshape(-1, 1)
    if array.ndim != 2:
        hint = f"; send one row as shape [1, {array.shape[0]}]" if array.ndim == 1 else ""
        raise BadRequest(f"input {name!r} must be 2-D [rows, features], got shape {list(array.shape)}{hint}")
    if width is not None and array.shape[1] != width:
        raise BadRequest(f"input {name!r}: expected {width} features per row, got {array.shape[1]}")
    if array.shape[0] == 0:
        raise BadRequest(f"input {name!r} has no rows")
    if not facts.text_features:
        numbers = _tensor_numbers(array, f"input {name!r}")
        return pd.DataFrame(numbers, columns=list(names)) if names is not None else numbers
    columns = [
        _tensor_column(array[:, j], j in facts.text_features, f"input {name!r}, {_column(j, facts)}")
        for j in range(array.shape[1])
    ]
    if names is not None:
        return pd.DataFrame(dict(zip(names, columns, strict=True)))
    table = np.empty(array.shape, dtype=object)
    for j, values in enumerate(columns):
        table[:, j] = values
    return table


def _per_column(inputs: Mapping[str, np.ndarray[Any, Any]], facts: Facts, names: Sequence[str]) -> Any:
    missing = [name for name in names if name not in inputs]
    if missing:
        raise BadRequest(
            f"missing input tensors for {_names(missing)}; the model takes one per column: {_names(names)}"
        )
    extra = [name for name in inputs if name not in names]
    if extra:
        raise BadRequest(f"unknown input tensors {_names(extra)}; the model takes one per column: {_names(names)}")
    columns: dict[str, np.ndarray[Any, Any]] = {}
    for index, name in enumerate(names):
        array = np.asarray(inputs[name])
        if array.ndim == 2 and array.shape[1] == 1:
            array = array[:, 0]
        if array.ndim != 1:
            raise BadRequest(f"input {name!r} must have shape [rows] or [rows, 1], got {list(array.shape)}")
        if columns and len(array) != len(first := next(iter(columns.values()))):
            raise BadRequest(f"input {name!r} has {len(array)} rows, input {names[0]!r} has {len(first)}")
        columns[name] = _tensor_column(array, index in facts.text_features, f"input {name!r}")
    if len(columns[names[0]]) == 0:
        raise BadRequest("the input tensors have no rows")
    return pd.DataFrame(columns)


def _tensor_column(values: np.ndarray[Any, Any], text: bool, where: str) -> np.ndarray[Any, Any]:
    if not text:
        return _tensor_numbers(values, where)
    if values.dtype.kind not in "OS":
        return values
    decoded = np.empty(len(values), dtype=object)
    try:
        decoded[:] = [value.decode() if isinstance(value, bytes) else value for value in values.tolist()]
    except UnicodeDecodeError as error:
        raise BadRequest(f"{where} holds bytes that are not UTF-8: {error}") from None
    return decoded


def _tensor_numbers(values: np.ndarray[Any, Any], where: str) -> np.ndarray[Any, Any]:
    if values.dtype.kind in "biuf":
        return values.astype(np.float64, copy=False)
    if values.dtype.kind in "OSU":
        try:
            # BYTES elements that spell numbers (b"5.1") convert, as float() reads them.
            return values.astype(np.float64)
        except (ValueError, TypeError, OverflowError):
            pass
    bad = next((value for value in values.ravel().tolist() if not _is_number(value)), values.dtype)
    raise BadRequest(f"{where} must hold numbers, and {_show(bad)} is not one")


def _column(index: int, facts: Facts) -> str:
    if facts.feature_names is not None:
        return f"column {index} ({facts.feature_names[index]!r})"
    return f"column {index}"


def _names(names: Sequence[str]) -> str:
    return ", ".join(repr(name) for name in names)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:57]}..."


def _json_type(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "null"
    return "a number"
