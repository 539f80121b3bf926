"""Our input conversion against inference-schema's, per call, for the typed inputs of issue 5.

Usage: python benchmarks/convert.py [--repeat 7]

For each case the same parsed JSON value is converted by inference-schema (`_deserialize_input_argument`, which is
what its decorator calls per request) and by the converter scoring_runtime builds at load time. Prints one line per
case: the best per-call time of each in microseconds (best of --repeat rounds) and the ratio. Nothing else runs, so
this is the conversion alone; the server's whole request path is measured with a load generator.
"""

from __future__ import annotations

import argparse
import random
import timeit
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from inference_schema.parameter_types.numpy_parameter_type import NumpyParameterType
from inference_schema.parameter_types.pandas_parameter_type import PandasParameterType
from inference_schema.schema_decorators import _deserialize_input_argument

from scoring_runtime.contract.convert import converter


def cases() -> list[tuple[str, Any, Any]]:
    rng = random.Random(0)
    row = [round(rng.uniform(-1, 1), 6) for _ in range(10)]
    rows = [[round(rng.uniform(-1, 1), 6) for _ in range(10)] for _ in range(1000)]
    frame = pd.DataFrame([{"a": 1.5, "b": 2, "name": "x"}])
    records = [{"a": round(rng.uniform(0, 100), 3), "b": i, "name": f"row{i}"} for i in range(10)]
    split = {"columns": ["a", "b", "name"], "index": list(range(10)), "data": [list(r.values()) for r in records]}
    return [
        ("numpy 1x10 float64", NumpyParameterType(np.array([row])), [row]),
        ("numpy 1000x10 float64", NumpyParameterType(np.array([row])), rows),
        ("pandas 10x3 records", PandasParameterType(frame), records),
        ("pandas 10x3 split", PandasParameterType(frame, orient="split"), split),
        ("pandas 1000x3 records", PandasParameterType(frame), records * 100),
    ]


def best_us(call: Callable[[], Any], repeat: int) -> float:
    number = 1
    while timeit.timeit(call, number=number) < 0.05:
        number *= 2
    return min(timeit.repeat(call, number=number, repeat=repeat)) / number * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    print(f"{'case':24} {'inference-schema us':>20} {'scoring_runtime us':>20} {'ratio':>7}")
    for name, param_type, value in cases():
        ours, how = converter(param_type, "p")
        assert how.startswith("scoring_runtime"), how
        theirs = best_us(lambda: _deserialize_input_argument(value, param_type, "p"), args.repeat)  # noqa: B023
        mine = best_us(lambda: ours(value), args.repeat)  # noqa: B023
        print(f"{name:24} {theirs:20.1f} {mine:20.1f} {theirs / mine:6.1f}x")


if __name__ == "__main__":
    main()
