# run() sleeps for the number of seconds in the body and reports how many run() calls overlapped. It prints when it
# starts sleeping, so that a test knows a call is inside run().
import os
import threading
import time

lock = threading.Lock()
active = 0
peak = 0


def init():
    pass


def run(data):
    global active, peak
    with lock:
        active += 1
        peak = max(peak, active)
    try:
        print(f"sleeping {data or 0}s in run()")
        time.sleep(float(data or 0))
    finally:
        with lock:
            active -= 1
    return {"pid": os.getpid(), "peak": peak, "thread": threading.current_thread().name}
