# run() takes 50 ms: one run thread serves at most 20 requests a second.
import time


def init():
    pass


def run(data):
    time.sleep(0.05)
    return "ok"
