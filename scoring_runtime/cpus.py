"""How many CPUs this process may really use, and the thread pools of numerical libraries sized to match.

OpenMP, OpenBLAS, MKL, onnxruntime and TensorFlow each start a thread per core they see, and they see the host's: a
container limited to 2 CPUs on a 32-core node runs 32 threads per pool, which the kernel's CFS quota then throttles
(every thread spends its share in the first few milliseconds of each period, then all wait). With several workers it
is worse still: each worker's pools claim every core. Here the usable CPUs are the fewest of the affinity mask and the
cgroup CPU quota (v2 `cpu.max`, v1 `cpu.cfs_quota_us`, on the process's cgroup and each one above it), and each
worker's pools get an equal share, at least one thread.

The environment variables are set before numpy or any framework is imported (the command line does it once its
settings are read), and only where the operator has not set them: theirs always win.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass
from pathlib import Path

# The variables the usual libraries read for their pool's size, once, when they load.
THREAD_VARIABLES = (
    "OMP_NUM_THREADS",  # OpenMP: XGBoost, LightGBM, scikit-learn's compiled parts, PyTorch
    "OPENBLAS_NUM_THREADS",  # numpy's and scipy's BLAS from PyPI
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "TF_NUM_INTRAOP_THREADS",  # TensorFlow's two pools (it reads no OpenMP variable)
    "TF_NUM_INTEROP_THREADS",
)


@dataclass(frozen=True)
class Cpus:
    count: float  # what may be used: a quota can be a fraction
    why: str  # where the figure comes from, for the start-up log


@dataclass(frozen=True)
class ThreadPlan:
    threads: int | None  # per worker and pool; None leaves the libraries' own defaults (SCORING_MODEL_THREADS=0)
    cpus: Cpus
    set: tuple[str, ...]  # the variables set here
    kept: tuple[str, ...]  # those the operator had set: left as they were

    def describe(self) -> str:
        if self.threads is None:
            return f"Threads of numerical libraries: their own defaults (SCORING_MODEL_THREADS=0); {self.cpus.why}"
        kept = f"; kept as set: {', '.join(self.kept)}" if self.kept else ""
        return f"Threads per pool of numerical libraries, per worker: {self.threads} ({self.cpus.why}){kept}"


def usable_cpus(root: Path = Path("/")) -> Cpus:
    """The CPUs this process may run on, fewer where a cgroup quota allows less time than that."""
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    quota = cgroup_quota(root)
    if quota is None or quota >= affinity:
        return Cpus(float(affinity), f"{affinity} CPUs usable" + (f", cgroup quota {quota:g}" if quota else ""))
    return Cpus(quota, f"cgroup CPU quota {quota:g} of {affinity} CPUs")


def threads_per_worker(setting: int | None, workers: int, cpus: Cpus) -> int | None:
    """SCORING_MODEL_THREADS: None (auto) shares the usable CPUs between the workers; 0 means the libraries' own."""
    if setting is not None:
        return setting or None
    return max(1, math.floor(cpus.count / max(1, workers) + 1e-9))


def apply_thread_defaults(
    setting: int | None, workers: int, environ: MutableMapping[str, str] | None = None, root: Path = Path("/")
) -> ThreadPlan:
    """Set each library's thread variable the operator left unset to this worker's share; before they are imported."""
    environ = os.environ if environ is None else environ
    cpus = usable_cpus(root)
    threads = threads_per_worker(setting, workers, cpus)
    kept = tuple(name for name in THREAD_VARIABLES if name in environ)
    if threads is None:
        return ThreadPlan(None, cpus, (), kept)
    unset = tuple(name for name in THREAD_VARIABLES if name not in environ)
    for name in unset:
        environ[name] = str(threads)
    return ThreadPlan(threads, cpus, unset, kept)


def cgroup_quota(root: Path = Path("/")) -> float | None:
    """The CPU time per period this process's cgroups allow, in CPUs (the least along its path); None if unlimited."""
    try:
        memberships = (root / "proc/self/cgroup").read_text().splitlines()
        mounts = (root / "proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return None  # not Linux, or /proc hidden: nothing known beyond the affinity
    folders = _cpu_folders(memberships, mounts, root)
    limits = [limit for folder, version in folders for limit in _limits(folder, version)]
    return min(limits) if limits else None


def _cpu_folders(memberships: list[str], mounts: list[str], root: Path) -> Iterator[tuple[Path, int]]:
    """The folders of the cgroup that holds the CPU controller for this process, its own and each parent's."""
    v1_path = v2_path = None
    for line in memberships:
        hierarchy, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if hierarchy == "0" and controllers == "":
            v2_path = path
        elif "cpu" in controllers.split(","):
            v1_path = path
    for line in mounts:
        fields = line.split()
        if " - " not in line or len(fields) < 5:
            continue
        after = line.split(" - ", 1)[1].split()
        fstype, options = after[0], (after[2] if len(after) > 2 else "")
        mount_root, mount_point = fields[3], fields[4]
        if fstype == "cgroup" and v1_path is not None and "cpu" in options.split(","):
            yield from _up(root / mount_point.lstrip("/"), mount_root, v1_path, 1)
        elif fstype == "cgroup2" and v2_path is not None and v1_path is None:
            yield from _up(root / mount_point.lstrip("/"), mount_root, v2_path, 2)


def _up(mount: Path, mount_root: str, path: str, version: int) -> Iterator[tuple[Path, int]]:
    # The mount shows the hierarchy from mount_root down (a container's cgroup namespace shows its own cgroup as "/").
    inside = mount_root == "/" or path == mount_root or path.startswith(mount_root.rstrip("/") + "/")
    relative = os.path.relpath(path, mount_root) if inside else "."
    folder = mount if relative == "." else mount / relative
    while True:
        yield folder, version
        if folder == mount or mount not in folder.parents:
            return
        folder = folder.parent


def _limits(folder: Path, version: int) -> Iterator[float]:
    try:
        if version == 2:
            quota, _, period = (folder / "cpu.max").read_text().strip().partition(" ")
        else:
            quota = (folder / "cpu.cfs_quota_us").read_text().strip()
            period = (folder / "cpu.cfs_period_us").read_text().strip()
        if quota not in ("max", "-1") and int(period) > 0 and int(quota) > 0:
            yield int(quota) / int(period)
    except (OSError, ValueError):
        return  # no controller file at this level, or one we cannot read: no limit known here
