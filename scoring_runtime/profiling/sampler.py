"""CPU and memory of the server's whole process tree, sampled on a thread of ours while the load runs.

CPU is the tree's user and system time added over an interval, divided by the interval: cores in use. Memory is the
tree's proportional set size (PSS) where the kernel gives it: gunicorn's workers share the pages forked from the
master (and with WORKER_PRELOAD the model itself), which a sum of resident sizes (RSS) counts once per worker. The RSS
sum is recorded too, and used where PSS cannot be read.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass

import psutil

LIST_EVERY_S = 1.0
# A process by its id and start time: an id the kernel reuses during the run is another process.
Key = tuple[int, float]


@dataclass(frozen=True)
class Usage:
    at: float  # time.monotonic()
    cpu: float  # cores, over the interval before `at`
    rss: int  # bytes, summed over the tree
    pss: int | None  # bytes, summed over the tree; None when any process's could not be read
    processes: int

    @property
    def memory(self) -> int:
        return self.pss if self.pss is not None else self.rss


@dataclass(frozen=True)
class Reading:
    """The tree at one instant: each process's CPU seconds so far, and the memory sums."""

    at: float
    cpu_seconds: dict[Key, float]
    rss: int
    pss: int | None


def cores(previous: Reading, current: Reading) -> float:
    """Cores the tree used between two readings. A process born in between counts its whole CPU time (it was born
    after the previous reading); one that ended in between loses what it used since the previous reading."""
    seconds = current.at - previous.at
    if seconds <= 0:
        return 0.0
    used = sum(max(0.0, total - previous.cpu_seconds.get(key, 0.0)) for key, total in current.cpu_seconds.items())
    return used / seconds


def read_tree(root: psutil.Process, processes: list[psutil.Process] | None = None) -> Reading | None:
    """One reading of `root` and its descendants (or of `processes`, a listing of them kept from before: listing
    children scans all of /proc); None once the root has exited."""
    if processes is None:
        processes = tree(root)
        if processes is None:
            return None
    at = time.monotonic()
    cpu: dict[Key, float] = {}
    rss = 0
    pss: int | None = 0
    for process in processes:
        try:
            with process.oneshot():
                times = process.cpu_times()
                key = (process.pid, process.create_time())
                memory, process_pss = _memory(process)
        except psutil.Error:
            continue  # it ended between the listing and the reading
        cpu[key] = times.user + times.system
        rss += memory
        pss = None if pss is None or process_pss is None else pss + process_pss
    if not cpu or not root.is_running():
        return None
    return Reading(at, cpu, rss, pss)


def tree(root: psutil.Process) -> list[psutil.Process] | None:
    try:
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return None


def _memory(process: psutil.Process) -> tuple[int, int | None]:
    try:
        full = process.memory_full_info()
    except psutil.AccessDenied:
        return process.memory_info().rss, None
    return full.rss, getattr(full, "pss", None)  # PSS is Linux's only


class TreeSampler:
    """Samples the tree under `pid` every `interval` seconds until stopped, or until the root exits."""

    def __init__(self, pid: int, interval: float) -> None:
        self.root = psutil.Process(pid)
        self.interval = interval
        self._usages: list[Usage] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="profile-sampler", daemon=True)
        self._last: Reading | None = None

    def start(self) -> TreeSampler:
        self._last = read_tree(self.root)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def usages(self) -> list[Usage]:
        with self._lock:
            return list(self._usages)

    def memory_now(self) -> int | None:
        """The tree's memory at this instant (PSS, else RSS), read apart from the samples."""
        reading = read_tree(self.root)
        if reading is None:
            return None
        return reading.pss if reading.pss is not None else reading.rss

    def _sample(self) -> None:
        processes: list[psutil.Process] | None = None
        listed = 0.0
        while not self._stop.wait(self.interval):
            # The listing is renewed every LIST_EVERY_S, so that workers gunicorn starts or replaces are seen.
            if processes is None or time.monotonic() - listed >= LIST_EVERY_S:
                processes, listed = tree(self.root), time.monotonic()
                if processes is None:
                    return
            reading = read_tree(self.root, processes)
            if reading is None:
                return
            if self._last is not None:
                usage = Usage(
                    reading.at, cores(self._last, reading), reading.rss, reading.pss, len(reading.cpu_seconds)
                )
                with self._lock:
                    self._usages.append(usage)
            self._last = reading


def between(usages: Iterable[Usage], start: float, end: float) -> list[Usage]:
    """The samples taken within [start, end]: a level's measured windows."""
    return [usage for usage in usages if start <= usage.at <= end]
