# run() blocks inside C code while holding the GIL (ctypes.PyDLL keeps it): the worker's event loop stops too.
import ctypes
import os


def init():
    print(f"init in {os.getpid()}")


def run(data):
    if data == "hog":
        ctypes.PyDLL(None).sleep(60)
    return {"pid": os.getpid()}
