# run() can take its own process down: `exit` calls os._exit, `segv` dereferences a null pointer through ctypes.
import ctypes
import os


def init():
    print(f"init in {os.getpid()}")


def run(data):
    if data == "exit":
        os._exit(1)
    if data == "segv":
        ctypes.string_at(0)
    return {"pid": os.getpid()}
