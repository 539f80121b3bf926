# run() hangs in the way the body names, for N seconds: `spin N` (a Python loop), `sleep N` (time.sleep), `cblock N`
# (blocked in C, the GIL released), each reporting when it has really ended; any other body answers at once.
import ctypes
import os
import threading
import time


def init():
    pass


def run(data):
    how, _, seconds = (data or "").partition(" ")
    if how in ("spin", "sleep", "cblock"):
        started = time.monotonic()
        try:
            if how == "spin":
                while time.monotonic() - started < float(seconds):
                    pass
            elif how == "sleep":
                time.sleep(float(seconds))
            else:
                ctypes.CDLL(None).sleep(int(seconds))
        finally:
            print(f"{how} ended after {time.monotonic() - started:.1f}s")
    return {"pid": os.getpid(), "thread": threading.current_thread().name}
