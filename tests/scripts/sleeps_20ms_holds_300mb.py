# init() holds 300 MB (allocated and written, so that every page is resident); run() sleeps 20 ms. The profile must
# show both: p50 near 20 ms, peak memory at least 300 MB.
import time

import numpy as np


def init():
    global held
    held = np.ones(300 * 1000 * 1000 // 8)


def run(data):
    time.sleep(0.02)
    return {"held": held.nbytes}
