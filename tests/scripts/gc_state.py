# run() reports the garbage collector's state in the worker that serves it.
import gc


def init():
    pass


def run(data):
    return {"frozen": gc.get_freeze_count(), "threshold": list(gc.get_threshold())}
