# Streamed responses. A `gate` query names a file: the generator waits for it after the first chunk, so a test can
# prove the first chunk reached the client before the generator finished.
import asyncio
import os
import time

from azureml.contrib.services.aml_request import rawhttp
from azureml.contrib.services.aml_response import AMLResponse


def init():
    pass


def _wait_for(gate):
    deadline = time.monotonic() + 20
    while gate and not os.path.exists(gate) and time.monotonic() < deadline:
        time.sleep(0.02)


def chunks(gate, fail):
    try:
        if fail == "late":  # the first chunk itself waits for the gate
            _wait_for(gate)
        yield "first\n"
        _wait_for(gate)
        if fail == "raise":
            raise RuntimeError("model crashed mid-stream")
        if fail == "type":
            yield 42
        for i in range(3):
            yield f"data: {i}\n\n".encode()
    finally:
        print("generator closed")


async def async_chunks(gate):
    yield b"first\n"
    while gate and not os.path.exists(gate):
        await asyncio.sleep(0.02)
    yield "second\n"


@rawhttp
def run(request):
    gate = request.args.get("gate")
    fail = request.args.get("fail")
    if request.args.get("kind") == "async":
        return AMLResponse(async_chunks(gate), 200)
    if request.args.get("kind") == "list":
        return AMLResponse(["a", b"b", "c"], 201)
    return AMLResponse(chunks(gate, fail), 200, {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
