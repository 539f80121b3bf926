"""Runs the reference `azmlinfsrv` CLI (azureml-inference-server-http) unchanged, bound to 127.0.0.1.

The reference binds 0.0.0.0 with no option to change it; the benchmark may only listen on the loopback address, so
this sets the module's default host before handing its own arguments to its own entry point.
Usage (inside the reference's venv): python run_reference.py --entry_script score.py --port 5001 [--worker_count 2]
"""

import sys

import azureml_inference_server_http.amlserver as amlserver

amlserver.DEFAULT_HOST = "127.0.0.1"
sys.argv[0] = "azmlinfsrv"
sys.exit(amlserver.run())
