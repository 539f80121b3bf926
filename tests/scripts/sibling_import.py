# Imports a module next to it: the script's own folder is on sys.path.
from driver_inner import run as inner_run


def init():
    pass


def run(data):
    return inner_run(num=int(data))
