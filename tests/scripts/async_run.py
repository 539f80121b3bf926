import asyncio
import os

active = 0
peak = 0


def init():
    pass


async def run(data):
    global active, peak
    active += 1
    peak = max(peak, active)
    try:
        await asyncio.sleep(float(data or 0))
    finally:
        active -= 1
    return {"pid": os.getpid(), "peak": peak, "async": True}
