# run() returns a value of the kind named in the request body.
import datetime

import numpy as np
import pandas as pd

from scoring_runtime import AMLResponse


def init():
    pass


def run(data):
    kind = data.strip()
    values = {
        "none": lambda: None,
        "dict": lambda: {"a": 1, "b": [1, 2], "c": "é"},
        "list": lambda: [1, 2.5, "x", None, True],
        "tuple": lambda: (1, 2),
        "str": lambda: "hello",
        "int": lambda: 7,
        "float": lambda: 1.25,
        "bool": lambda: True,
        "nan": lambda: {"x": float("nan"), "y": float("inf")},
        "ndarray": lambda: np.array([[1.0, 2.0], [3.0, np.nan]]),
        "ndarray_int": lambda: np.arange(6, dtype=np.int32).reshape(2, 3)[:, 1],
        "npscalar": lambda: {"f": np.float32(1.5), "i": np.int64(3), "b": np.bool_(True)},
        "dataframe": lambda: pd.DataFrame({"a": [1, 2], "b": ["x", "y"], "c": [0.5, None]}),
        "series": lambda: pd.Series([3, 4, 5], name="s"),
        "timestamps": lambda: pd.DataFrame({"t": pd.to_datetime(["2020-01-01", None])}),
        "bytes": lambda: b"\x00\x01binary\xff",
        "bigint": lambda: 2**70,
        "datetime": lambda: datetime.datetime(2020, 1, 2, 3, 4, 5),
        "set": lambda: {1, 2},
        "raise": lambda: 1 / 0,
        "response500": lambda: AMLResponse("broken", 503),
        "response_json": lambda: AMLResponse({"k": "v"}, 201, json_str=True),
        "response_none": lambda: AMLResponse(None, 333),
        "response_text": lambda: AMLResponse("test", 444, {"Content-Type": "text/plain", "x-request-id": "mine"}),
    }
    return values[kind]()
