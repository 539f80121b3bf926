"""A run() that kills its worker under gunicorn: that request fails, a new worker runs init(), service resumes."""

from __future__ import annotations

import time

import httpx2 as httpx
import pytest

from tests.conftest import ServerFactory


@pytest.mark.slow
@pytest.mark.parametrize("how", ["exit", "segv"])
def test_a_crashed_worker_is_replaced(serve: ServerFactory, how: str) -> None:
    server = serve("crash.py", workers=2)
    with pytest.raises(httpx.TransportError):
        server.post("/score", content=how)
    crashed_at = time.monotonic()
    # The other worker keeps serving at once; within a few seconds both are serving again.
    deadline = crashed_at + 15
    while time.monotonic() < deadline and server.log().count("init in ") < 3:
        response = server.post("/score", content="ok")
        assert response.status_code == 200
        time.sleep(0.05)
    assert server.log().count("init in ") == 3  # two workers at start, one replacement
    assert time.monotonic() - crashed_at < 10
