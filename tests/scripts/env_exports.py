"""Reports the variables azmlinfsrv's launcher exports, as init() and run() see them.

With ENV_EXPORTS_DIR set, init() writes what it saw to <dir>/<pid>.json, so a test can check every worker.
"""

import json
import os

NAMES = [
    "AML_APP_INSIGHTS_ENABLED",
    "AML_APP_INSIGHTS_KEY",
    "AML_APP_ROOT",
    "AZUREML_ENTRY_SCRIPT",
    "AZUREML_MODEL_DIR",
    "WORKER_COUNT",
    "SERVER_PORT",
    "HEALTH_PORT",
    "HTTP_X_MS_SERVER_VERSION",
    "AML_CORS_ORIGINS",
    "AZUREML_CONFIG_FILE",
    "TRANSPORT_PROTOCOL",
]


def _seen():
    return {name: os.environ.get(name) for name in NAMES}


def init():
    folder = os.environ.get("ENV_EXPORTS_DIR")
    if folder:
        path = os.path.join(folder, f"{os.getpid()}.json")
        with open(path + ".part", "w") as out:
            json.dump(_seen(), out)
        os.replace(path + ".part", path)


def run(data):
    return {"pid": os.getpid(), "env": _seen()}
