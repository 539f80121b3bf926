"""The recommendation: which load level to size for, and the CPU, memory and workers to request for it.

The rule (docs/profiling.md says why):
- The level: among the levels whose success rate is at least 99 % (else those with the best rate), and in rate
  mode that kept up (answered at least 90 % of the rate offered; all, if none did), the ones whose latency at the
  chosen percentile meets `--latency-target-ms` when it is given (else the one with the lowest such latency,
  reported as missing the target); of these, the first, in the order measured, whose throughput is at least 95 % of
  the best of them: the knee, where more load adds latency and no throughput.
- CPU: the 90th percentile of the server tree's CPU samples at that level, plus a 15 % margin (the Kubernetes VPA
  recommender's target and margin), rounded up to 0.1 core, at least 0.1 core.
- Memory: the tree's peak over the whole run (init() included), plus 15 %, rounded up to 0.1 GB, at least 0.25 GB
  (VPA's floor per pod is 250 MB). A memory limit equal to the request: memory cannot be throttled, only killed.
- WORKER_COUNT: one worker per whole core recommended, at least one. A sync run() uses at most about one core in a
  worker (the GIL), so a worker per core is what lets the CPU requested be used.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from scoring_runtime.profiling.windows import percentile_of

MIN_SUCCESS_RATE = 0.99
KNEE = 0.95
KEEPS_UP = 0.9
CPU_PERCENTILE = 90.0
MARGIN = 0.15
CPU_FLOOR = 0.1
MEMORY_FLOOR_GB = 0.25
GB = 1e9
MI = 1 << 20
# Below this many cores a worker at the knee is waiting, not computing: more workers would serve more.
IDLE_WORKER_CPU = 0.5


@dataclass(frozen=True)
class Candidate:
    throughput: float
    success_rate: float
    latency_s: float | None  # at the chosen percentile; None when nothing succeeded
    keeps_up: bool = True  # rate mode: at least KEEPS_UP of the rate offered was answered successfully


@dataclass(frozen=True)
class Choice:
    index: int
    target_met: bool | None  # None: no target was given


def choose(levels: Sequence[Candidate], latency_target_s: float | None) -> Choice:
    indexed = list(enumerate(levels))
    answered = [(i, level) for i, level in indexed if level.latency_s is not None]
    if not answered:
        raise ValueError("no level had a successful request")
    best_rate = max(level.success_rate for _, level in answered)
    eligible = [(i, level) for i, level in answered if level.success_rate >= min(MIN_SUCCESS_RATE, best_rate)]
    # A rate the server did not keep up with is no state to size for: its queue, and its latency, grow for as long as
    # the load lasts. (An unsettled closed-loop level is only noisy: its figures still hold.)
    eligible = [(i, level) for i, level in eligible if level.keeps_up] or eligible
    target_met: bool | None = None
    if latency_target_s is not None:
        meeting = [(i, level) for i, level in eligible if (level.latency_s or 0.0) <= latency_target_s]
        target_met = bool(meeting)
        if not meeting:
            fastest = min(eligible, key=lambda item: item[1].latency_s or 0.0)
            return Choice(fastest[0], False)
        eligible = meeting
    best = max(level.throughput for _, level in eligible)
    knee = next(i for i, level in eligible if level.throughput >= KNEE * best)
    return Choice(knee, target_met)


def round_up(value: float, step: float) -> float:
    # A small allowance for binary fractions: 0.3 / 0.1 is 2.9999999999999996, 0.1 * 3 is 0.30000000000000004.
    return round(math.ceil(value / step - 1e-9) * step, 6)


def cpu(samples: Sequence[float]) -> float | None:
    if not samples:
        return None
    return max(CPU_FLOOR, round_up(percentile_of(samples, CPU_PERCENTILE) * (1 + MARGIN), 0.1))


def memory_gb(peak_bytes: int | None) -> float | None:
    if peak_bytes is None:
        return None
    return max(MEMORY_FLOOR_GB, round_up(peak_bytes * (1 + MARGIN) / GB, 0.1))


def worker_count(recommended_cpu: float | None) -> int | None:
    if recommended_cpu is None:
        return None
    return max(1, math.floor(recommended_cpu + 0.5))


def worker_note(cpu_at_knee: float | None, workers: int, knee_index: int, levels: int) -> str | None:
    """When load beyond the knee was measured and added no throughput while each worker used well under a core,
    run() waits on something else than the CPU (I/O, a sleep, a lock): more workers would serve more."""
    if cpu_at_knee is None or knee_index >= levels - 1 or cpu_at_knee / workers >= IDLE_WORKER_CPU:
        return None
    return (
        f"throughput stopped growing at {cpu_at_knee / workers:.2f} core per worker: run() waits on something other "
        "than the CPU, so more workers (profile again with --workers N) or SCORING_MAX_CONCURRENCY (for a "
        "thread-safe run()) would serve more for little more CPU"
    )


def kubernetes_resources(cpu_cores: float | None, memory: float | None, workers: int | None) -> str | None:
    """The container's `resources:` and `env:` for the recommendation, as YAML; None when nothing was measured."""
    if cpu_cores is None or memory is None or workers is None:
        return None
    mebibytes = math.ceil(memory * GB / MI)
    return (
        "resources:\n"
        "  requests:\n"
        f'    cpu: "{round(cpu_cores * 1000)}m"\n'
        f'    memory: "{mebibytes}Mi"\n'
        "  limits:\n"
        f'    memory: "{mebibytes}Mi"\n'
        "env:\n"
        "  - name: WORKER_COUNT\n"
        f'    value: "{workers}"\n'
    )
