"""The floor: a bare Starlette app on uvicorn (uvloop, httptools, one process) doing each scenario's work inline.

Usage: python benchmarks/floor_app.py --scenario echo --port 8000 [--model_dir sample_models/diabetes/model]

`POST /score` reads the body, parses it with orjson and answers what the scenario's run() answers, on the event
loop, with no schema library, no thread hand-off, no access log and no middleware: the least any server on these
frameworks can spend. `GET /` answers `Healthy`, as the real servers do, for the harness's readiness check.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

JSON = "application/json"


def make_work(scenario: str, model_dir: Path | None) -> tuple[Callable[[bytes], bytes], str]:
    """The scenario's per-request work, bytes in and bytes out, and the answer's content type."""
    if scenario == "echo":
        return lambda body: orjson.dumps(body.decode("utf-8")), JSON
    if scenario in ("numpy_1x10", "numpy_1000x10"):
        return lambda body: orjson.dumps(np.asarray(orjson.loads(body)["data"], dtype=float).sum(axis=1).tolist()), JSON
    if scenario == "pandas_10x3":

        def pandas_work(body: bytes) -> bytes:
            frame = pd.DataFrame(orjson.loads(body)["data"])
            return orjson.dumps((frame["x"] * frame["y"]).tolist())

        return pandas_work, JSON
    if scenario == "raw_1mb":
        return lambda body: body, "application/octet-stream"
    if scenario == "diabetes":
        assert model_dir is not None, "the diabetes floor needs --model_dir"
        coef = np.load(model_dir / "coef.npy")
        intercept = float(np.load(model_dir / "intercept.npy"))
        return lambda body: orjson.dumps((np.asarray(orjson.loads(body)["data"]) @ coef + intercept).tolist()), JSON
    if scenario == "json_5mb":
        records = [{"id": i, "score": i * 0.25, "label": f"item-{i:06d}"} for i in range(100_000)]
        return lambda body: orjson.dumps(records), JSON
    raise SystemExit(f"unknown scenario {scenario!r}")


def create_app(scenario: str, model_dir: Path | None) -> Starlette:
    work, media_type = make_work(scenario, model_dir)

    async def score(request: Request) -> Response:
        return Response(work(await request.body()), media_type=media_type)

    async def healthy(request: Request) -> Response:
        return PlainTextResponse("Healthy")

    return Starlette(routes=[Route("/", healthy), Route("/score", score, methods=["POST"])])


def scenario_args(argv: Any, description: str) -> argparse.Namespace:
    """The command line the harness gives every server of its own: --scenario, --port and --model_dir."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--scenario", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--model_dir", type=Path)
    return parser.parse_args(argv)


def main(argv: Any = None) -> None:
    args = scenario_args(argv, __doc__.splitlines()[0])
    app = create_app(args.scenario, args.model_dir)
    uvicorn.run(
        app, host="127.0.0.1", port=args.port, loop="uvloop", http="httptools", access_log=False, log_level="warning"
    )


if __name__ == "__main__":
    main()
