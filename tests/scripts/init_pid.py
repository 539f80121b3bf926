import os
import threading

init_pid = None
init_thread = None
init_calls = 0


def init():
    global init_pid, init_thread, init_calls
    init_pid = os.getpid()
    init_thread = threading.current_thread().name
    init_calls += 1


def run(data):
    return {
        "init_pid": init_pid,
        "pid": os.getpid(),
        "init_calls": init_calls,
        "init_thread": init_thread,
        "run_thread": threading.current_thread().name,
    }
