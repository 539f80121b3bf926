def init():
    pass


def run(data):
    if data == "exit":
        raise SystemExit(1)  # must not take the worker down
    return 1 / 0
