"""The images of base-images/, built with buildah for the tests (base-images/build_local.py), and run from them.

An image is rebuilt when the sources it is made of have changed since it was built: its label records their digest.
A container runs the image's own entry point, environment, user and working folder, through `buildah run` (chroot
isolation, the host's network), so that the tests reach it on 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import signal
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any

from tests.helpers import ROOT, free_port, wait_answering

SOURCE_LABEL = "org.scoring-runtime.source"
ENTRY_POINT = b"/opt/scoring-runtime/bin/scoring-runtime"


def _build_local() -> ModuleType:
    spec = importlib.util.spec_from_file_location("build_local", ROOT / "base-images" / "build_local.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build_local = _build_local()


def source_digest(dockerfile: Path, extras: str) -> str:
    """What an image is made of: the Dockerfile, the package's sources and metadata, the extras asked for."""
    digest = hashlib.sha256(extras.encode())
    paths = [dockerfile, ROOT / "pyproject.toml", ROOT / "README.md", ROOT / ".dockerignore"]
    paths += sorted(
        path for path in (ROOT / "scoring_runtime").rglob("*") if path.is_file() and "__pycache__" not in path.parts
    )
    for path in paths:
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def inspect(image: str) -> dict[str, Any]:
    shown = subprocess.run(
        ["buildah", "inspect", "--type", "image", image], env=build_local.environment(), capture_output=True, text=True
    )
    if shown.returncode != 0:
        return {}
    found: dict[str, Any] = json.loads(shown.stdout)
    return found


def config(image: str) -> dict[str, Any]:
    """The image's Docker configuration: Entrypoint, Env, User, WorkingDir, ExposedPorts, Healthcheck, Labels."""
    found: dict[str, Any] = inspect(image)["Docker"]["config"]
    return found


def image(name: str, extras: str = "") -> str:
    """The runtime image with `extras`, built unless an image of the same sources is there already."""
    dockerfile = ROOT / "base-images" / "runtime" / "Dockerfile"
    digest = source_digest(dockerfile, extras)
    build_local.ensure_tools()  # before buildah is asked for the image: a fresh machine has neither tool
    found = inspect(name)
    if found and (found["Docker"]["config"].get("Labels") or {}).get(SOURCE_LABEL) == digest:
        return name
    build_local.build(dockerfile, name, {"EXTRAS": extras}, labels={SOURCE_LABEL: digest})
    return name


class Container:
    """One container of `image` serving with the image's own command; its output goes to a log file."""

    def __init__(self, image: str, log_dir: Path, env: dict[str, str], volumes: dict[Path, str]) -> None:
        settings, buildah = self._create(image)
        command = ["buildah", "run", "--isolation", "chroot", "--network", "host", "-e", f"SERVER_PORT={self.port}"]
        command += [f"--env={key}={value}" for key, value in env.items()]
        command += [f"--volume={source}:{target}:ro" for source, target in volumes.items()]
        self.log_path = log_dir / f"container-{self.port}.log"
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [*command, self.name, "--", *settings["Entrypoint"]],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=buildah,
            start_new_session=True,
        )

    def _create(self, image: str) -> tuple[dict[str, Any], dict[str, str]]:
        """A working container of `image` on a free port: the image's configuration, and buildah's environment."""
        self.image = image
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        buildah = build_local.environment()
        self.name = subprocess.run(
            ["buildah", "from", "--pull-never", image], env=buildah, capture_output=True, text=True, check=True
        ).stdout.strip()
        return config(image), buildah

    def wait_ready(self, timeout: float = 90.0) -> Container:
        wait_answering(self.process, self.url + "/ready", self.log, timeout, "container", pause=0.1)
        return self

    def server_pid(self) -> int:
        """The server's process, the one `docker run` would make PID 1: the first descendant of `buildah run` whose
        command is the image's entry point (not buildah's helper that starts it, whose arguments name it too)."""
        pending = [self.process.pid]
        while pending:
            pid = pending.pop(0)
            try:
                command = Path(f"/proc/{pid}/cmdline").read_bytes()
            except FileNotFoundError:
                continue
            argv = command.split(b"\0")
            if pid != self.process.pid and ENTRY_POINT in argv and not argv[0].startswith(b"buildah"):
                return pid
            for task in Path(f"/proc/{pid}/task").iterdir():
                pending += [int(child) for child in (task / "children").read_text().split()]
        raise LookupError(f"no server process under {self.process.pid}")

    def signal(self, number: signal.Signals) -> None:
        os.kill(self.server_pid(), number)

    def wait_exit(self, timeout: float = 30.0) -> int:
        return self.process.wait(timeout)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def exec(self, *command: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """`command` in a second process of the same container (as `docker exec`)."""
        options = [f"--env={key}={value}" for key, value in (env or {}).items()]
        return subprocess.run(
            ["buildah", "run", "--isolation", "chroot", "--network", "host", *options, self.name, "--", *command],
            env=build_local.environment(),
            capture_output=True,
            text=True,
            timeout=60,
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        self._log.close()
        subprocess.run(["buildah", "rm", self.name], env=build_local.environment(), capture_output=True)


class Pid1Container(Container):
    """A container whose server is PID 1 of its own PID namespace, as under Docker or Kubernetes: buildah's chroot
    isolation makes none, so the image's root filesystem (buildah mount) is entered here with util-linux's unshare
    and chroot, with the image's environment, user, working folder and entry point. Only what runs as PID 1 is
    different: a signal it has no handler for is ignored, and Python does not handle SIGTERM by default."""

    def __init__(self, image: str, log_dir: Path, env: dict[str, str], volumes: dict[Path, str]) -> None:
        settings, buildah = self._create(image)
        root = subprocess.run(
            ["buildah", "mount", self.name], env=buildah, capture_output=True, text=True, check=True
        ).stdout.strip()
        environment = [*settings["Env"], f"SERVER_PORT={self.port}", *(f"{k}={v}" for k, v in env.items())]
        binds = " && ".join(f"mount --bind {source} {root}{target}" for source, target in volumes.items())
        # Each step execs the next, so that the entry point is the namespace's first process.
        enter = f"{binds + ' && ' if binds else ''}exec chroot --userspec={settings['User']} {root} " + " ".join(
            ["env", "-i", *(f"'{item}'" for item in environment), "sh", "-c", '\'cd "$0" && exec "$@"\'']
            + [settings["WorkingDir"], *settings["Entrypoint"]]
        )
        command = ["unshare", "--pid", "--fork", "--kill-child", "--mount", f"--mount-proc={root}/proc", "sh", "-c"]
        self.log_path = log_dir / f"container-{self.port}.log"
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [*command, enter], stdout=self._log, stderr=subprocess.STDOUT, env=buildah, start_new_session=True
        )

    def server_pid(self) -> int:
        """The namespace's PID 1, as the host numbers it: the child unshare forked."""
        for task in Path(f"/proc/{self.process.pid}/task").iterdir():
            children = (task / "children").read_text().split()
            if children:
                return int(children[0])
        raise LookupError(f"unshare ({self.process.pid}) has no child")

    def pid_in_namespace(self) -> int:
        status = Path(f"/proc/{self.server_pid()}/status").read_text()
        line = next(line for line in status.splitlines() if line.startswith("NSpid:"))
        return int(line.split()[-1])
