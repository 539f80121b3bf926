"""cpus.py: the CPUs a process may use (affinity and cgroup quota) and the thread variables set from them."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from scoring_runtime import config_values as values
from scoring_runtime.cpus import (
    THREAD_VARIABLES,
    Cpus,
    apply_thread_defaults,
    cgroup_quota,
    threads_per_worker,
    usable_cpus,
)

V2_MOUNT = "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw"
V1_CPU_MOUNT = "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct"


def _root(tmp_path: Path, cgroup: str, mounts: list[str], files: dict[str, str]) -> Path:
    (tmp_path / "proc/self").mkdir(parents=True)
    (tmp_path / "proc/self/cgroup").write_text(cgroup)
    (tmp_path / "proc/self/mountinfo").write_text("\n".join(mounts) + "\n")
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def test_v2_takes_the_least_quota_along_the_cgroup_path(tmp_path: Path) -> None:
    root = _root(
        tmp_path,
        "0::/kubepods/pod1/container\n",
        [V2_MOUNT],
        {
            "sys/fs/cgroup/kubepods/pod1/container/cpu.max": "max 100000\n",
            "sys/fs/cgroup/kubepods/pod1/cpu.max": "150000 100000\n",
            "sys/fs/cgroup/kubepods/cpu.max": "400000 100000\n",
        },
    )
    assert cgroup_quota(root) == 1.5


def test_v2_in_a_cgroup_namespace_reads_the_mount_itself(tmp_path: Path) -> None:
    root = _root(tmp_path, "0::/\n", [V2_MOUNT], {"sys/fs/cgroup/cpu.max": "50000 100000\n"})
    assert cgroup_quota(root) == 0.5


def test_v1_reads_the_cpu_controller_and_its_parents(tmp_path: Path) -> None:
    folder = "sys/fs/cgroup/cpu,cpuacct"
    root = _root(
        tmp_path,
        "12:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n1:name=systemd:/docker/abc\n",
        [V1_CPU_MOUNT, "33 31 0:30 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory"],
        {
            f"{folder}/docker/abc/cpu.cfs_quota_us": "-1\n",
            f"{folder}/docker/abc/cpu.cfs_period_us": "100000\n",
            f"{folder}/docker/cpu.cfs_quota_us": "250000\n",
            f"{folder}/docker/cpu.cfs_period_us": "100000\n",
            f"{folder}/cpu.cfs_quota_us": "-1\n",
            f"{folder}/cpu.cfs_period_us": "100000\n",
        },
    )
    assert cgroup_quota(root) == 2.5


def test_hybrid_hierarchies_use_the_v1_cpu_controller(tmp_path: Path) -> None:
    # cgroup2 is mounted too (systemd's "unified"), but the CPU controller is v1's: a cpu.max there means nothing.
    root = _root(
        tmp_path,
        "1:cpu:/job\n0::/job\n",
        [
            "32 31 0:29 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu",
            "41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw",
        ],
        {
            "sys/fs/cgroup/unified/job/cpu.max": "10000 100000\n",
            "sys/fs/cgroup/cpu/job/cpu.cfs_quota_us": "300000\n",
            "sys/fs/cgroup/cpu/job/cpu.cfs_period_us": "100000\n",
        },
    )
    assert cgroup_quota(root) == 3.0


def test_a_path_outside_the_mounted_root_reads_the_mount_point(tmp_path: Path) -> None:
    # A mount of the hierarchy from /docker/abc down, and a process path the mount cannot show.
    mount = "32 31 0:29 /docker/abc /sys/fs/cgroup rw - cgroup2 cgroup2 rw"
    root = _root(tmp_path, "0::/elsewhere\n", [mount], {"sys/fs/cgroup/cpu.max": "100000 100000\n"})
    assert cgroup_quota(root) == 1.0
    below = "32 31 0:29 /docker/abc /sys/fs/cgroup rw - cgroup2 cgroup2 rw"
    nested = _root(tmp_path / "n", "0::/docker/abc/job\n", [below], {"sys/fs/cgroup/job/cpu.max": "70000 100000\n"})
    assert cgroup_quota(nested) == 0.7


@pytest.mark.parametrize(
    ("text", "expected"),
    [("max 100000\n", None), ("garbage\n", None), ("100000 0\n", None), ("0 100000\n", None), ("x y\n", None)],
)
def test_unlimited_or_unreadable_quotas_are_no_limit(tmp_path: Path, text: str, expected: float | None) -> None:
    root = _root(tmp_path, "0::/\n", [V2_MOUNT, "garbage line", "1 2 3 - short"], {"sys/fs/cgroup/cpu.max": text})
    assert cgroup_quota(root) is expected


def test_nothing_known_without_proc_or_controller_files(tmp_path: Path) -> None:
    assert cgroup_quota(tmp_path) is None
    assert cgroup_quota(_root(tmp_path / "v2", "0::/\n", [V2_MOUNT], {})) is None
    assert cgroup_quota(_root(tmp_path / "none", "1:name=systemd:/\n", [V1_CPU_MOUNT], {})) is None


def test_usable_cpus_is_the_fewer_of_the_affinity_and_the_quota(tmp_path: Path) -> None:
    affinity = len(os.sched_getaffinity(0))
    small = _root(tmp_path / "s", "0::/\n", [V2_MOUNT], {"sys/fs/cgroup/cpu.max": "50000 100000\n"})
    assert usable_cpus(small) == Cpus(0.5, f"cgroup CPU quota 0.5 of {affinity} CPUs")
    large = _root(tmp_path / "l", "0::/\n", [V2_MOUNT], {"sys/fs/cgroup/cpu.max": f"{affinity * 200000} 100000\n"})
    assert usable_cpus(large).count == affinity and "cgroup quota" in usable_cpus(large).why
    assert usable_cpus(tmp_path) == Cpus(float(affinity), f"{affinity} CPUs usable")


@pytest.mark.parametrize(
    ("setting", "workers", "cpus", "expected"),
    [(None, 1, 8.0, 8), (None, 3, 8.0, 2), (None, 4, 2.0, 1), (None, 1, 0.5, 1), (None, 2, 3.0, 1), (6, 4, 2.0, 6)],
)
def test_threads_per_worker(setting: int | None, workers: int, cpus: float, expected: int) -> None:
    assert threads_per_worker(setting, workers, Cpus(cpus, "")) == expected


def test_zero_means_the_libraries_own_defaults() -> None:
    assert threads_per_worker(0, 2, Cpus(8.0, "")) is None


def test_apply_sets_only_what_the_operator_left_unset(tmp_path: Path) -> None:
    environ = {"OMP_NUM_THREADS": "7"}
    plan = apply_thread_defaults(3, 1, environ, tmp_path)
    assert environ == {name: "7" if name == "OMP_NUM_THREADS" else "3" for name in THREAD_VARIABLES}
    assert plan.kept == ("OMP_NUM_THREADS",) and len(plan.set) == len(THREAD_VARIABLES) - 1
    assert plan.describe().startswith("Threads per pool of numerical libraries, per worker: 3 (")
    assert plan.describe().endswith("; kept as set: OMP_NUM_THREADS")
    untouched: dict[str, str] = {}
    plan = apply_thread_defaults(0, 1, untouched, tmp_path)
    assert untouched == {} and plan.threads is None and "their own defaults" in plan.describe()


@pytest.mark.parametrize(("raw", "expected"), [("auto", None), ("AUTO", None), ("", None), ("0", 0), (" 4 ", 4)])
def test_the_setting_reads_auto_or_a_count(raw: str, expected: int | None) -> None:
    assert values.threads(raw) == expected


@pytest.mark.parametrize("raw", ["-1", "many", "1025", "1.5"])
def test_the_setting_refuses_anything_else(raw: str) -> None:
    with pytest.raises(ValueError, match="or auto"):
        values.threads(raw)


@pytest.fixture
def cpu_cgroup() -> Iterator[Path]:
    """A real cgroup v1 CPU folder with a quota of 1.5 CPUs and a child under it, where this machine allows it."""
    mount = Path("/sys/fs/cgroup/cpu")
    folder = mount / f"scoring-runtime-test-{uuid.uuid4().hex[:8]}"
    try:
        (folder / "inner").mkdir(parents=True)
    except OSError as error:
        pytest.skip(f"no writable cgroup v1 CPU controller here: {error}")
    try:
        (folder / "cpu.cfs_quota_us").write_text("150000")
        yield folder / "inner"
    finally:
        for path in (folder / "inner", folder):
            path.rmdir()


def test_a_real_cgroup_quota_is_found(cpu_cgroup: Path) -> None:
    """Run in a cgroup whose parent has a 1.5-CPU quota, a process counts 1.5 CPUs (or fewer, with fewer cores)."""
    code = (
        "import os, sys\n"
        f"open({str(cpu_cgroup / 'cgroup.procs')!r}, 'w').write(str(os.getpid()))\n"
        "from scoring_runtime.cpus import usable_cpus\n"
        "print(usable_cpus().count)\n"
    )
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert float(found.stdout) == min(1.5, len(os.sched_getaffinity(0)))
