"""Bytes objects written in place (unfilled_bytes.py): on CPython they are ordinary bytes once filled."""

from __future__ import annotations

import gc
import pickle
import sys

import pytest

from scoring_runtime.serving.http.unfilled_bytes import unfilled_bytes


def test_a_filled_object_is_an_ordinary_bytes_object() -> None:
    whole = unfilled_bytes(5)
    assert whole is not None  # CPython, which CI runs, has the C API
    body, view = whole
    assert type(body) is bytes and len(body) == 5 and len(view) == 5 and not view.readonly
    view[:] = b"hello"
    del view, whole
    gc.collect()
    assert body == b"hello"
    assert hash(body) == hash(b"hel" + b"lo")
    assert {body: 1}[b"hello"] == 1
    assert pickle.loads(pickle.dumps(body)) == b"hello"
    assert body.decode() == "hello" and body[1:3] == b"el"
    assert sys.getrefcount(body) == 2  # this name and getrefcount's argument: nothing else holds it


def test_each_call_makes_a_new_object() -> None:
    first, second = unfilled_bytes(2), unfilled_bytes(2)
    assert first is not None and second is not None
    first[1][:] = b"ab"
    second[1][:] = b"cd"
    assert (first[0], second[0]) == (b"ab", b"cd")


@pytest.mark.parametrize("size", [-1, 0, 1])
def test_sizes_that_may_be_shared_singletons_are_refused(size: int) -> None:
    with pytest.raises(ValueError, match="at least 2"):
        unfilled_bytes(size)
