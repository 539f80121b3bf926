"""Starting the benchmarked servers pinned to one core, and reading their CPU time, memory and log size from /proc.

Every server starts in its own session (so its own process group) under `taskset`, which the whole process tree
inherits; `stop()` ends that group by the Popen pid only.
"""

from __future__ import annotations

import hashlib
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from bench_nocode import MLSERVER_READY, MLSERVER_REQUIREMENTS, MLSERVER_VENV, MLSERVERS, mlserver_command
from bench_scenarios import HERE, ROOT, Scenario

REF_VENV = HERE / ".venv-ref"
REF_REQUIREMENTS = HERE / "reference-requirements.txt"
TICKS = os.sysconf("SC_CLK_TCK")
SERVER_CORE = 1  # wrk runs on core 0
# urllib would otherwise honour a proxy from the environment; every request here goes to 127.0.0.1.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
SETTING_PREFIXES = ("AZUREML_", "AML_", "SCORING_", "WORKER_", "SERVICE_", "SEPERATE_", "APPINSIGHTS_", "MLSERVER_")


@dataclass(frozen=True)
class ServerKind:
    # scoring_runtime, reference, floor, wire, mlserver (v2_sklearn's peer) or mlserver-batching (there for context)
    name: str
    workers: int

    @property
    def label(self) -> str:
        return f"{self.name} w{self.workers}"


ALL_SERVERS = [
    ServerKind("wire", 1),
    ServerKind("floor", 1),
    ServerKind("scoring_runtime", 1),
    ServerKind("scoring_runtime", 2),
    ServerKind("reference", 1),
    ServerKind("reference", 2),
    ServerKind("mlserver", 1),
    ServerKind("mlserver-batching", 1),
]


def ensure_reference_venv() -> Path:
    """The reference's venv, created or refreshed when reference-requirements.txt changed; its python."""
    return ensure_venv(REF_VENV, REF_REQUIREMENTS, "the reference server")


def ensure_mlserver_venv() -> Path:
    """MLServer's venv (the no-code V2 scenarios' peer), created or refreshed as the reference's is; its python."""
    return ensure_venv(MLSERVER_VENV, MLSERVER_REQUIREMENTS, "MLServer")


def ensure_venv(venv: Path, requirements: Path, what: str) -> Path:
    python = venv / "bin" / "python"
    stamp = venv / ".requirements-sha256"
    wanted = hashlib.sha256(requirements.read_bytes()).hexdigest()
    if python.exists() and stamp.exists() and stamp.read_text() == wanted:
        return python
    print(f"setting up {what} in {venv} (pip install -r {requirements.name})", flush=True)
    subprocess.run(["python3", "-m", "venv", str(venv)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "-r", str(requirements)], check=True)
    stamp.write_text(wanted)
    return python


def versions(wrk_version: str, ref_python: Path | None) -> dict[str, str]:
    found = {"python": platform.python_version(), "wrk": wrk_version, "kernel": platform.release()}
    for package in ("scoring-runtime", "starlette", "uvicorn", "gunicorn", "orjson", "numpy", "pandas"):
        found[package] = metadata.version(package)
    found["commit"] = measured_commit(ROOT)
    if ref_python is not None:
        probe = "from importlib.metadata import version as v; print(v('azureml-inference-server-http'), v('gunicorn'))"
        ref, ref_gunicorn = subprocess.run(
            [str(ref_python), "-c", probe], capture_output=True, text=True
        ).stdout.split()
        found["azureml-inference-server-http"] = ref
        found["reference gunicorn"] = ref_gunicorn
    return found


# What `make bench` itself writes: the previous run's results, changed until committed, are not the code measured.
OWN_OUTPUT = ("benchmarks/RESULTS.md", "benchmarks/RESULTS.jsonl", "benchmarks/results-chart.png")


def measured_commit(root: Path) -> str:
    """HEAD's short hash, with `-dirty` when a tracked file other than the benchmark's own output differs from it."""
    head = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    if head.returncode != 0:
        return "unknown"
    excluded = [f":(exclude){path}" for path in OWN_OUTPUT]
    status = subprocess.run(
        ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no", "--", ".", *excluded],
        capture_output=True,
        text=True,
    )
    dirty = status.returncode != 0 or bool(status.stdout.strip())
    return head.stdout.strip() + ("-dirty" if dirty else "")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without any setting either server reads, so both run on their defaults."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(SETTING_PREFIXES)}
    for name in ("SERVER_PORT", "HEALTH_PORT", "PYTHONPATH"):
        env.pop(name, None)
    env.update(extra)
    return env


def server_command(
    kind: ServerKind, scenario: Scenario, port: int, ref_python: Path | None, scratch: Path | None = None
) -> list[str]:
    """The server's command line; `scratch`, a folder of the server's own, holds what MLServer reads at start."""
    model = ["--model_dir", str(scenario.model_dir)] if scenario.model_dir else []
    if kind.name in MLSERVERS:
        assert scenario.model_dir is not None and scratch is not None
        return mlserver_command(scenario.model_dir, (port, free_port(), free_port()), scratch, kind.name)
    if kind.name == "scoring_runtime" and scenario.no_code:
        named = ["--model_name", scenario.model_name] if scenario.model_name else []
        command = [sys.executable, "-m", "scoring_runtime", *model, *named]
        return [*command, "--host", "127.0.0.1", "--port", str(port), "--worker_count", str(kind.workers)]
    if kind.name in ("floor", "wire"):
        app = HERE / f"{kind.name}_app.py"
        return [sys.executable, str(app), "--scenario", scenario.name, "--port", str(port), *model]
    if kind.name == "scoring_runtime":
        command = [sys.executable, "-m", "scoring_runtime", "--entry_script", str(scenario.script), *model]
        return [*command, "--host", "127.0.0.1", "--port", str(port), "--worker_count", str(kind.workers)]
    assert ref_python is not None
    command = [str(ref_python), str(HERE / "run_reference.py"), "--entry_script", str(scenario.script), *model]
    return [*command, "--port", str(port), "--worker_count", str(kind.workers)]


def http(method: str, url: str, body: bytes | None = None, content_type: str = "") -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, method=method)
    if content_type:
        request.add_header("Content-Type", content_type)
    try:
        with OPENER.open(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def process_tree(pid: int) -> list[int]:
    pids = [pid]
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except FileNotFoundError:
        return []
    for task in tasks:
        try:
            children = (task / "children").read_text().split()
        except FileNotFoundError:
            continue
        for child in children:
            pids.extend(process_tree(int(child)))
    return pids


def cpu_seconds(pid: int) -> float:
    """utime + stime of the process and of its reaped children (cutime, cstime), in seconds."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except FileNotFoundError:
        return 0.0
    return sum(int(value) for value in fields[11:15]) / TICKS  # fields 14 to 17 of proc(5), after pid and comm


def core_busy_seconds(core: int) -> float:
    """Time core `core` spent running tasks (user, nice, system) or lost to the hypervisor (steal), from /proc/stat.

    Interrupt and softirq time is left out: on loopback it is mostly the benchmark's own network traffic.
    """
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith(f"cpu{core} "):
            user, nice, system, _idle, _iowait, _irq, _softirq, steal = (int(v) for v in line.split()[1:9])
            return (user + nice + system + steal) / TICKS
    return 0.0


def pss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except (FileNotFoundError, PermissionError):
        pass
    return 0


class RunningServer:
    """One benchmarked server, from spawn to stop; its stdout and stderr go to a log file."""

    def __init__(
        self,
        kind: ServerKind,
        scenario: Scenario,
        log_path: Path,
        ref_python: Path | None,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.kind = kind
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self._home = tempfile.TemporaryDirectory(prefix="bench-home-")
        # The reference's gunicorn 27 keeps a control socket in $HOME, shared by every instance: give it its own.
        env = clean_env(HOME=self._home.name) if kind.name == "reference" else clean_env()
        env.update(extra_env or {})
        scratch = Path(self._home.name)
        command = ["taskset", "-c", str(SERVER_CORE), *server_command(kind, scenario, self.port, ref_python, scratch)]
        self._log = self.log_path.open("wb")
        self.spawned = time.monotonic()
        self.process = subprocess.Popen(
            command,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=scenario.script.parent,
            start_new_session=True,
        )

    def wait_ready(self, timeout: float = 60.0) -> float:
        """Seconds from spawn to the first 200 on `GET /` (MLServer: on its readiness route)."""
        ready = self.url + (MLSERVER_READY if self.kind.name in MLSERVERS else "/")
        while time.monotonic() - self.spawned < timeout:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.kind.label} exited with {self.process.returncode}: see {self.log_path}")
            try:
                if http("GET", ready)[0] == 200:
                    return time.monotonic() - self.spawned
            except OSError:
                pass
            time.sleep(0.01)
        raise TimeoutError(f"{self.kind.label} not ready after {timeout} s: see {self.log_path}")

    def wait_idle(self, timeout: float = 60.0) -> float:
        """Seconds until the tree spent no CPU for 0.1 s: answering what a finished wrk run left queued.

        A client that wrk abandons at the end of a run is still served (a sync worker writes a 5 MB answer to each
        of 64 queued connections before it learns they are closed); the next run must not pay for it.
        """
        start = time.monotonic()
        last = self.cpu_seconds()
        while time.monotonic() - start < timeout:
            time.sleep(0.1)
            now = self.cpu_seconds()
            if now == last:
                break
            last = now
        return time.monotonic() - start

    def pids(self) -> list[int]:
        return process_tree(self.process.pid)

    def cpu_seconds(self) -> float:
        return sum(cpu_seconds(pid) for pid in self.pids())

    def pss_mib(self) -> float:
        return sum(pss_kib(pid) for pid in self.pids()) / 1024

    def log_bytes(self) -> int:
        self._log.flush()
        return self.log_path.stat().st_size

    def stop(self) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(20)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        finally:
            self._log.close()
            self._home.cleanup()
