"""Thread pools sized to the CPUs a worker may use (cpus.py), seen from a script inside the real server."""

from __future__ import annotations

import pytest

from scoring_runtime.cpus import usable_cpus
from tests.conftest import ServerFactory

pytestmark = pytest.mark.slow


def _share(workers: int) -> int:
    return max(1, int(usable_cpus().count) // workers)


def test_each_worker_gets_its_share_of_the_cpus(serve: ServerFactory) -> None:
    server = serve("thread_pools.py", workers=2)
    share = _share(2)
    answer = server.post("/score", json={}).json()
    assert answer["env"] == {name: str(share) for name in answer["env"]}
    # The BLAS read the variable when numpy loaded it: the pool itself has that size.
    assert answer["pools"]["blas"] == share
    assert f"Threads per pool of numerical libraries, per worker: {share} (" in server.log()


def test_variables_the_operator_set_are_kept(serve: ServerFactory) -> None:
    server = serve("thread_pools.py", env={"OPENBLAS_NUM_THREADS": "1", "SCORING_MODEL_THREADS": "2"})
    answer = server.post("/score", json={}).json()
    assert answer["env"]["OPENBLAS_NUM_THREADS"] == "1" and answer["pools"]["blas"] == 1
    assert answer["env"]["OMP_NUM_THREADS"] == "2" == answer["env"]["TF_NUM_INTRAOP_THREADS"]
    assert "per worker: 2 (" in server.log() and "kept as set: OPENBLAS_NUM_THREADS" in server.log()


def test_zero_leaves_the_libraries_defaults(serve: ServerFactory) -> None:
    server = serve("thread_pools.py", env={"SCORING_MODEL_THREADS": "0"})
    answer = server.post("/score", json={}).json()
    assert answer["env"] == {name: None for name in answer["env"]}
    assert "Threads of numerical libraries: their own defaults (SCORING_MODEL_THREADS=0)" in server.log()


def test_a_bad_value_stops_start_up(serve: ServerFactory) -> None:
    server = serve("thread_pools.py", env={"SCORING_MODEL_THREADS": "many"}, wait=False)
    assert server.wait_exit(30) != 0
    assert "SCORING_MODEL_THREADS" in server.log() and "or auto" in server.log()
