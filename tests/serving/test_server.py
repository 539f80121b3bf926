"""The real server, as a subprocess on a loopback port: uvicorn (one worker) and gunicorn (two workers)."""

from __future__ import annotations

import re
import signal
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx2 as httpx
import pytest

from tests.conftest import ServerFactory
from tests.helpers import SAMPLES, SCRIPTS, Server

pytestmark = pytest.mark.slow

NOT_FOUND = (
    "The requested URL was not found on the server. If you entered the URL manually please check your spelling and "
    "try again."
)


def parallel(count: int, call: object) -> list[httpx.Response]:
    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(lambda _: call(), range(count)))  # type: ignore[operator]


def test_sample_models(serve: ServerFactory, workers: int) -> None:
    diabetes = serve(
        SAMPLES / "diabetes" / "score.py", "--model_dir", str(SAMPLES / "diabetes" / "model"), workers=workers
    )
    row = [0.04, 0.05, 0.06, 0.02, -0.04, -0.03, -0.04, 0.0, 0.02, -0.02]
    response = diabetes.post("/score", json={"data": [row, [0.0] * 10]})
    assert response.status_code == 200
    predictions = response.json()
    assert len(predictions) == 2 and 100 < predictions[1] < 200  # the intercept, about 149
    bad = diabetes.post("/score", json={"data": [[1, 2]]})
    assert bad.status_code == 400 and "'data'" in bad.json()["message"]

    echo = serve(SAMPLES / "echo" / "score.py", workers=workers)
    assert echo.post("/score", content='{"hello": "world"}').json() == '{"hello": "world"}'

    multi = serve(SAMPLES / "multi" / "score.py", "--model_dir", str(SAMPLES / "multi" / "models"), workers=workers)
    assert multi.post("/score", content='{"x": 3}').json() == {
        "first": 6,
        "second": 300,
        "second_v1": 30,
        "versions": {"first": 1, "second": 2},
    }


def test_routes_errors_and_headers(serve: ServerFactory, workers: int) -> None:
    server = serve("returns.py", workers=workers)
    health = server.get("/")
    assert (health.status_code, health.text, health.headers["content-type"]) == (
        200,
        "Healthy",
        "text/html; charset=utf-8",
    )
    assert server.get("/nope").json() == {"message": NOT_FOUND}
    routed = server.request("PUT", "/score")
    assert (routed.status_code, routed.json()) == (405, {"message": "The method is not allowed for the requested URL."})
    assert server.post("/score", content="dict").json() == {"a": 1, "b": [1, 2], "c": "é"}
    assert server.post("/score", content="ndarray").json() == [[1.0, 2.0], [3.0, None]]
    assert server.post("/score", content="dataframe").json()[0] == {"a": 1, "b": "x", "c": 0.5}
    assert server.post("/score", content="bytes").content == b"\x00\x01binary\xff"
    failed = server.post("/score", content="raise")
    assert failed.status_code == 500 and failed.headers["x-ms-run-function-failed"] == "True"
    assert failed.json() == {"message": "An unexpected error occurred in scoring script. Check the logs for more info."}
    assert "ZeroDivisionError" in server.log() and "ZeroDivisionError" not in failed.text

    ok = server.post("/score", content="int", headers={"x-request-id": "my-id", "TraceId": "t1"})
    assert ok.headers["x-request-id"] == ok.headers["x-ms-request-id"] == "my-id"
    assert ok.headers["traceid"] == "t1"
    assert ok.headers["x-ms-server-version"].startswith("scoring_runtime/")
    assert ok.headers["x-ms-run-function-failed"] == "False"
    assert re.fullmatch(r"\d+\.\d{3}", ok.headers["x-ms-run-fn-exec-ms"])
    generated = server.post("/score", content="int")
    assert re.fullmatch(r"[0-9a-f-]{36}", generated.headers["x-request-id"])
    rejected = server.post("/score", content="int", headers={"x-request-id": "x" * 101})
    assert rejected.status_code == 431
    assert rejected.json() == {"message": "x-request-id must not exceed 100 characters"}
    assert "x-request-id" not in rejected.headers
    assert server.get("/").status_code == 200  # still serving


def test_input_modes(serve: ServerFactory, workers: int) -> None:
    typed = serve("typed_num.py", workers=workers)
    assert typed.get("/score?num=10").json()["double"] == 20
    assert typed.post("/score", json={"num": 3}, headers={"test-header": "v"}).json() == {
        "double": 6,
        "color": "red",
        "test_header": "v",
    }
    assert typed.post("/score", json={"num": "x"}).status_code == 400
    assert typed.post("/score", content=b"{", headers={"content-type": "application/json"}).json() == {
        "message": "POST body could not be decoded as JSON: "
        "Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"
    }
    assert typed.post("/score", content=b"{}").status_code == 415
    assert typed.request("OPTIONS", "/score").status_code == 200

    raw = serve("raw_echo.py", workers=workers)
    for method in ("GET", "POST", "OPTIONS"):
        assert raw.request(method, "/score", content=b"abc").json()["method"] == method
    assert raw.request("HEAD", "/score").status_code == 200
    assert raw.request("DELETE", "/score").status_code == 405


def test_run_never_blocks_the_event_loop(serve: ServerFactory, workers: int) -> None:
    server = serve("sleepy.py", workers=workers)
    with ThreadPoolExecutor(workers) as pool:
        sleeping = [pool.submit(server.post, "/score", content="10") for _ in range(workers)]
        time.sleep(0.5)  # let the sleeping run() calls start
        latencies = []
        with httpx.Client(base_url=server.url, timeout=30) as client:  # one client: measure the server, not set-up
            for _ in range(10):
                start = time.perf_counter()
                assert client.get("/").text == "Healthy"
                latencies.append(time.perf_counter() - start)
        assert not any(future.done() for future in sleeping)
        server.kill()  # ends the 10 s calls early
    assert statistics.median(latencies) < 0.05, latencies
    assert max(latencies) < 1.0, latencies


def test_one_run_at_a_time_per_worker_by_default(serve: ServerFactory, workers: int) -> None:
    server = serve("sleepy.py", workers=workers)
    results = [r.json() for r in parallel(4, lambda: server.post("/score", content="0.3"))]
    assert {r["peak"] for r in results} == {1}
    raised = serve("sleepy.py", "--max_concurrency", "3", workers=workers)
    results = [r.json() for r in parallel(6, lambda: raised.post("/score", content="0.5"))]
    assert max(r["peak"] for r in results) > 1


def test_async_run_concurrency(serve: ServerFactory) -> None:
    default = serve("async_run.py")
    assert {r.json()["peak"] for r in parallel(3, lambda: default.post("/score", content="0.3"))} == {1}
    raised = serve("async_run.py", env={"SCORING_MAX_CONCURRENCY": "3"})
    assert max(r.json()["peak"] for r in parallel(3, lambda: raised.post("/score", content="0.5"))) == 3


@pytest.mark.parametrize("script", ["sleepy.py", "async_run.py"])
def test_scoring_timeout(serve: ServerFactory, workers: int, script: str) -> None:
    server = serve(script, workers=workers, env={"SCORING_TIMEOUT_MS": "300"})
    with httpx.Client(base_url=server.url, timeout=30.0) as client:
        assert client.post("/score", content="0").status_code == 200  # the connection is open and warm
        for _ in range(3):
            start = time.perf_counter()
            response = client.post("/score", content="5")
            elapsed = time.perf_counter() - start
            assert (response.status_code, response.json()) == (500, {"message": "Scoring timeout after 300 ms"})
            assert response.headers["x-ms-run-function-failed"] == "True"
            assert 0.3 <= elapsed < 0.4  # the timeout, plus at most the 100 ms the behaviour allows
    assert server.get("/").status_code == 200


@pytest.mark.parametrize(
    ("how", "stopped"),
    [("spin", True), ("sleep", False), ("cblock", False)],
    ids=["python-loop", "time-sleep", "blocked-in-c"],
)
def test_a_timed_out_run_frees_its_slot(serve: ServerFactory, workers: int, how: str, stopped: bool) -> None:
    """A run() past SCORING_TIMEOUT_MS is stopped where Python can stop it, and otherwise its thread is abandoned:
    either way the next request is served at once, not after the stuck call."""
    server = serve("hangs.py", workers=workers, env={"SCORING_TIMEOUT_MS": "300"})
    with ThreadPoolExecutor(1) as pool:
        hung = pool.submit(server.post, "/score", content=f"{how} 3")
        server.wait_for_log("Scoring timeout after 300 ms")
        start = time.perf_counter()
        answers = [server.post("/score", content="now") for _ in range(3)]
        elapsed = time.perf_counter() - start
        assert hung.result().json() == {"message": "Scoring timeout after 300 ms"}
    assert [answer.status_code for answer in answers] == [200, 200, 200]
    assert elapsed < 1.5  # not the 3 s the stuck call takes (the grace before abandoning is 0.1 s)
    # Where a tracer is active on CPython 3.11 (coverage measuring the server), calls are abandoned, not interrupted.
    stopped = stopped and "are not interrupted" not in server.log()
    if stopped:
        # The exception landed in the Python loop: its finally ran at once, and no thread was given up.
        server.wait_for_log(f"{how} ended after 0.")
        assert "abandoned" not in server.log()
    else:
        server.wait_for_log(
            "its thread is abandoned and a new one takes its slot (1 abandoned thread(s) still running)"
        )
        server.wait_for_log(f"{how} ended after 3.", timeout=10)
        server.wait_for_log("An abandoned run() call has returned; 0 abandoned thread(s) still running")
    metrics = server.get("/metrics").text
    assert f"scoring_abandoned_runs_total {0.0 if stopped else 1.0}" in metrics
    assert "scoring_abandoned_threads 0.0" in metrics
    assert server.get("/").status_code == 200


@pytest.mark.parametrize(
    ("script", "expected_log"),
    [
        ("import_error.py", "Failed to import user script because it raised an unhandled exception"),
        ("init_fails.py", "User's init function failed"),
        ("no_run.py", "does not have a run() function defined."),
        ("run_varargs.py", "run() cannot accept positional-only arguments, *args, or **kwargs."),
        ("missing_script.py", "No such file or directory."),
    ],
)
def test_startup_failures_exit_3(serve: ServerFactory, workers: int, script: str, expected_log: str) -> None:
    server = serve(script, "--model_dir", str(SAMPLES / "multi" / "models"), workers=workers, wait=False)
    assert server.wait_exit(60) == 3
    log = server.log()
    assert expected_log in log
    assert "Model Directory Contents:" in log and "            model.json" in log


def test_no_entry_script_and_no_main_exits_3(serve: ServerFactory, tmp_path: Path) -> None:
    server = serve(None, wait=False, cwd=tmp_path)
    assert server.wait_exit(60) == 3
    assert "No score script found. Expected score script main.py." in server.log()


def test_main_py_fallback(serve: ServerFactory) -> None:
    server = serve(None, cwd=SCRIPTS / "mainapp")
    assert server.get("/score", params={"num": 10}).json() == 20


@pytest.mark.parametrize("preload", [False, True], ids=["no-preload", "preload"])
def test_init_once_per_worker_or_once_before_fork(serve: ServerFactory, preload: bool) -> None:
    server = serve("init_pid.py", workers=2, env={"WORKER_PRELOAD": str(preload).lower()})
    bodies = [r.json() for r in parallel(16, lambda: server.post("/score", content=""))]
    master = server.process.pid
    assert all(body["init_calls"] == 1 for body in bodies)
    assert all(body["pid"] != master for body in bodies)
    if preload:
        assert {body["init_pid"] for body in bodies} == {master}
    else:
        assert all(body["init_pid"] == body["pid"] for body in bodies)


def test_environment_module_registration_and_pickling(serve: ServerFactory, workers: int) -> None:
    server = serve("env_report.py", "--model_dir", "./my/dir", workers=workers)
    body = server.post("/score", content="").json()
    assert body["env"]["AZUREML_MODEL_DIR"] == "./my/dir"  # verbatim, as the reference passes it
    assert body["env"]["AZUREML_ENTRY_SCRIPT"] == str(SCRIPTS / "env_report.py")
    assert body["module"] == "entry_module" and body["registered"] is True and body["pickled"] == 5


def test_config_precedence_in_a_real_server(serve: ServerFactory, tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"AZUREML_MODEL_DIR": "/from/file", "SCORING_TIMEOUT_MS": 400}')
    script = str(SCRIPTS / "env_report.py")
    from_file = serve(None, "--entry-script", script, cwd=tmp_path)
    assert from_file.post("/score", content="").json()["env"]["AZUREML_MODEL_DIR"] == "/from/file"
    assert "Config File: " + str(tmp_path / "config.json") in from_file.log()
    from_env = serve(None, "--entry-script", script, cwd=tmp_path, env={"AZUREML_MODEL_DIR": "/from/env"})
    assert from_env.post("/score", content="").json()["env"]["AZUREML_MODEL_DIR"] == "/from/env"
    from_cli = serve(
        None, "--entry-script", script, "--model-dir", "/cli", cwd=tmp_path, env={"AZUREML_MODEL_DIR": "/e"}
    )
    assert from_cli.post("/score", content="").json()["env"]["AZUREML_MODEL_DIR"] == "/cli"


def test_logging(serve: ServerFactory, workers: int) -> None:
    server = serve("logs.py", workers=workers)
    assert server.post("/score", content="x").json() == "ok"
    for _ in range(3):
        server.get("/")
    server.get("/nope")
    time.sleep(0.3)
    log = server.log()

    def line(level: str, name: str, message: str) -> str:
        return r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} " + rf"{level} \[\d+\] {re.escape(name)} - {message}"

    assert re.search(line(level="I", name="azmlinfsrv.print", message="Initializing"), log)
    assert re.search(line(level="I", name="azmlinfsrv.print", message="scoring x"), log)
    assert re.search(line(level="I", name="user.model", message="user logging from init"), log)
    assert re.search(line(level="W", name="user.model", message="user warning line"), log)
    access = line(level="I", name="azmlinfsrv", message=r"POST /score 200 \d+\.\d{3}ms 4")
    assert len(re.findall(access, log)) == 1
    assert "GET / " not in log and "user debug line" not in log
    assert "to stderr" in log  # print(file=sys.stderr) goes to stderr untouched


def test_log_level_takes_effect(serve: ServerFactory, workers: int) -> None:
    server = serve("logs.py", env={"AZUREML_LOG_LEVEL": "WARNING"}, workers=workers)
    server.post("/score", content="x")
    time.sleep(0.3)
    log = server.log()
    assert "user warning line" in log
    assert "azmlinfsrv - POST" not in log and "user logging from init" not in log
    assert " I [" not in log  # no INFO line from us, uvicorn or gunicorn
    debug = serve("logs.py", env={"AZUREML_LOG_LEVEL": "DEBUG"})
    debug.post("/score", content="x")
    time.sleep(0.3)
    assert "user debug line" in debug.log()


def test_health_port_serves_the_same_routes(serve: ServerFactory, workers: int) -> None:
    from tests.helpers import free_port

    health = free_port()
    server = serve("returns.py", "--health_port", str(health), workers=workers)
    assert httpx.get(f"http://127.0.0.1:{health}/", timeout=10).text == "Healthy"
    assert server.get("/").text == "Healthy"


def test_cli_help_and_invalid_settings(tmp_path: Path) -> None:
    import subprocess
    import sys

    from tests.helpers import clean_env

    shown = subprocess.run([sys.executable, "-m", "scoring_runtime", "--help"], capture_output=True, text=True)
    assert shown.returncode == 0
    for flag in ("--entry_script", "--model-dir", "--worker_count", "--access_control_allow_origins", "--health_port"):
        assert flag in shown.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "scoring_runtime", "--entry_script", str(SCRIPTS / "returns.py")],
        capture_output=True,
        text=True,
        env=clean_env(SCORING_TIMEOUT_MS="soon"),
        cwd=tmp_path,
    )
    assert bad.returncode == 3
    assert bad.stderr.strip().splitlines() == [
        "scoring-runtime: configuration error: SCORING_TIMEOUT_MS: expected an integer, got 'soon'"
    ]
    port = subprocess.run([sys.executable, "-m", "scoring_runtime", "--port", "0"], capture_output=True, text=True)
    assert port.returncode == 3 and "--port: must be at least 1, got 0" in port.stderr


def test_port_in_use_fails_and_first_server_keeps_serving(serve: ServerFactory, tmp_path: Path) -> None:
    first = serve("returns.py")
    second = Server("--entry_script", str(SCRIPTS / "returns.py"), log_dir=tmp_path)
    second.stop()
    import subprocess
    import sys

    from tests.helpers import clean_env

    clash = subprocess.run(
        [sys.executable, "-m", "scoring_runtime", "--entry_script", str(SCRIPTS / "returns.py"), "--host", "127.0.0.1",
         "--port", str(first.port)],
        capture_output=True, text=True, env=clean_env(), timeout=60,
    )  # fmt: skip
    assert clash.returncode != 0
    assert first.get("/").status_code == 200


def test_user_logging_json_override(serve: ServerFactory, tmp_path: Path) -> None:
    app_root = tmp_path / "app"
    app_root.mkdir()
    (app_root / "logging.json").write_text(
        '{"version": 1, "formatters": {"f": {"format": "CUSTOM %(name)s %(message)s"}},'
        ' "handlers": {"h": {"class": "logging.StreamHandler", "formatter": "f", "stream": "ext://sys.stdout"}},'
        ' "root": {"level": "INFO", "handlers": ["h"]}}'
    )
    server = serve("logs.py", cwd=app_root)
    server.post("/score", content="x")
    time.sleep(0.3)
    log = server.log()
    assert f"Loaded logging config from {app_root / 'logging.json'}" in log
    assert "CUSTOM user.model user warning line" in log


def test_async_init_under_preload(serve: ServerFactory) -> None:
    server = serve("async_init.py", workers=2, env={"WORKER_PRELOAD": "true"})
    assert server.post("/score", content="").json()["loaded_in"] == server.process.pid


def test_async_timeout_counts_the_wait_for_a_slot(serve: ServerFactory) -> None:
    server = serve("async_run.py", env={"SCORING_TIMEOUT_MS": "700"})
    statuses = sorted(r.status_code for r in parallel(2, lambda: server.post("/score", content="0.5")))
    assert statuses == [200, 500]  # the second call waits 0.5 s for the slot, then would need 0.5 s more


def test_worker_timeout_with_one_worker_stops_the_stuck_run(serve: ServerFactory) -> None:
    """With one worker there is no arbiter to replace the process: a run() past WORKER_TIMEOUT gets its answer, its
    thread is stopped or abandoned, and the same process serves the next request at once."""
    server = serve("hangs.py", env={"WORKER_TIMEOUT": "1", "SCORING_TIMEOUT_MS": "0"})
    serving = server.post("/score", content="now").json()["pid"]
    start = time.perf_counter()
    stuck = server.post("/score", content="cblock 5")
    assert time.perf_counter() - start < 3.0
    assert (stuck.status_code, stuck.json()) == (500, {"message": "run() did not finish within WORKER_TIMEOUT (1 s)"})
    assert stuck.headers["x-ms-run-function-failed"] == "True"
    after = server.post("/score", content="now")
    assert after.status_code == 200 and after.json()["pid"] == serving
    assert "1 run() call(s) still running after WORKER_TIMEOUT (1 s): stopped" in server.log()
    server.wait_for_log("a new one takes its slot (1 abandoned thread(s) still running)")


def test_too_many_abandoned_threads_replace_the_single_process_in_place(serve: ServerFactory) -> None:
    """One worker: past SCORING_MAX_ABANDONED_RUNS stuck threads, the process drains and executes itself again, with
    the same process id and the same listening socket, so that nothing is refused meanwhile."""
    server = serve("hangs.py", env={"SCORING_TIMEOUT_MS": "300", "SCORING_MAX_ABANDONED_RUNS": "0"})
    pid = server.post("/score", content="now").json()["pid"]
    assert server.post("/score", content="cblock 30").status_code == 500
    server.wait_for_log("more than SCORING_MAX_ABANDONED_RUNS (0): replacing this process")
    answers = []
    for _ in range(20):  # during the drain, the new start and after: each waits in the kept socket's backlog
        answers.append(server.post("/score", content="now"))
        time.sleep(0.1)
    assert [answer.status_code for answer in answers] == [200] * 20
    assert answers[-1].json()["pid"] == pid
    server.wait_for_log("Users's init has completed successfully")
    assert server.log().count("Users's init has completed successfully") == 2
    assert "scoring_abandoned_threads 0.0" in server.get("/metrics").text  # the stuck thread went with the old image


def test_too_many_abandoned_threads_replace_a_gunicorn_worker(serve: ServerFactory) -> None:
    server = serve("hangs.py", workers=2, env={"SCORING_TIMEOUT_MS": "300", "SCORING_MAX_ABANDONED_RUNS": "0"})
    before = {server.post("/score", content="now").json()["pid"] for _ in range(20)}
    assert server.post("/score", content="cblock 30").status_code == 500
    server.wait_for_log("more than SCORING_MAX_ABANDONED_RUNS (0): replacing worker")
    deadline = time.monotonic() + 30
    seen: set[int] = set()
    while time.monotonic() < deadline and not seen - before:
        answer = server.post("/score", content="now")
        assert answer.status_code == 200
        seen.add(answer.json()["pid"])
    assert seen - before, "a new worker answers"


def test_a_single_process_whose_event_loop_stops_is_started_again(serve: ServerFactory) -> None:
    """A run() that holds the GIL in C stops the event loop: no Python code can act, but the watchdog thread, which
    needs no GIL, dumps the tracebacks and ends the serving process after WORKER_TIMEOUT; its parent starts a new one
    on the same sockets (supervise.py), and stops it when it is stopped itself."""
    server = serve("gil_hog.py", env={"WORKER_TIMEOUT": "2"})
    first = server.post("/score", content="now").json()["pid"]
    assert first != server.process.pid  # served by the supervised process
    with ThreadPoolExecutor(1) as pool:
        hogged = pool.submit(server.post, "/score", content="hog")
        server.wait_for_log("The serving process stopped unexpectedly (exit status 1); starting a new one")
        with pytest.raises(httpx.HTTPError):
            hogged.result()
    # Connections made while the new one starts wait in the backlog of the sockets the parent kept.
    answer = server.post("/score", content="now")
    assert answer.status_code == 200 and answer.json()["pid"] not in (first, server.process.pid)
    log = server.log()
    assert "Timeout (0:00:03)!" in log  # WORKER_TIMEOUT, and the second between two beats
    assert "gil_hog.py" in log  # where the run() was stuck
    assert log.count("init in") == 2
    server.process.send_signal(signal.SIGTERM)  # the parent alone, as an orchestrator sends it
    assert server.wait_exit(20) == 0
    assert "Draining" in server.log()


def test_a_supervised_process_that_never_becomes_ready_ends_the_parent(serve: ServerFactory) -> None:
    server = serve("init_fails.py", env={"WORKER_TIMEOUT": "2"}, wait=False)
    assert server.wait_exit(30) == 3
    assert "starting a new one" not in server.log()
