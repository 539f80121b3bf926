"""Reports the thread variables it was started with and the pools numpy's BLAS and OpenMP really have."""

import os

import numpy as np
import threadpoolctl

NAMES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "TF_NUM_INTRAOP_THREADS")


def init():
    np.dot(np.ones((64, 64)), np.ones((64, 64)))  # the BLAS is loaded and has made its pool


def run(data):
    pools = {info["user_api"]: info["num_threads"] for info in threadpoolctl.threadpool_info()}
    return {"env": {name: os.environ.get(name) for name in NAMES}, "pools": pools}
