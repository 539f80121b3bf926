# init() takes a known time; run() counts its calls in a metric of its own, with prometheus_client.
import os
import time

from prometheus_client import Counter

predictions = Counter("model_predictions", "Predictions made by this model.")


def init():
    time.sleep(0.3)


def run(data):
    predictions.inc()
    return {"pid": os.getpid()}
