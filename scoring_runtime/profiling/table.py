"""What is printed at the end: a row per level, the recommendation, the notes, and the Kubernetes block."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_COLUMNS: tuple[tuple[str, str, Callable[[Any], str]], ...] = (
    ("level", "level", str),
    ("stable", "stable", lambda value: "yes" if value else "NO"),
    ("req/s", "measuredQueriesPerSecond", lambda value: f"{value:.1f}"),
    ("mean ms", "averageLatencyInMs", lambda value: _number(value)),
    ("p50", "latencyPercentile50InMs", lambda value: _number(value)),
    ("p90", "latencyPercentile90InMs", lambda value: _number(value)),
    ("p95", "latencyPercentile95InMs", lambda value: _number(value)),
    ("p99", "latencyPercentile99InMs", lambda value: _number(value)),
    ("p99.9", "latencyPercentile999InMs", lambda value: _number(value)),
    ("ok %", "successRate", lambda value: f"{value:g}"),
    ("cpu p90", "cpuPercentile90", lambda value: _number(value, 2)),
    ("mem GB", "maxUtilizedMemoryInGB", lambda value: _number(value, 3)),
    ("client cpu", "clientCpu", lambda value: f"{value:.2f}"),
)


def _number(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def levels_table(profile: dict[str, Any]) -> str:
    rows = [[heading for heading, _, _ in _COLUMNS]]
    rows += [[show(level[key]) for _, key, show in _COLUMNS] for level in profile["levels"]]
    widths = [max(len(row[index]) for row in rows) for index in range(len(_COLUMNS))]
    lines = [
        "  ".join(cell.ljust(widths[i]) if i < 2 else cell.rjust(widths[i]) for i, cell in enumerate(row))
        for row in rows
    ]
    return "\n".join(line.rstrip() for line in lines)


def summary(profile: dict[str, Any]) -> str:
    lines = [levels_table(profile), ""]
    if profile["initTimeInMs"] is not None:
        source = {"metrics": "scoring_init_duration_seconds", "time-to-ready": "time to /ready"}[
            profile["initTimeSource"]
        ]
        lines.append(f"init(): {profile['initTimeInMs']:.1f} ms ({source})")
    if profile["memoryAfterInitInGB"] is not None:
        lines.append(f"memory after init(): {profile['memoryAfterInitInGB']:.3f} GB ({profile['memoryMeasure']})")
    if profile["maxUtilizedCpu"] is not None:
        lines.append(f"peak: {profile['maxUtilizedCpu']:.2f} cores, {profile['maxUtilizedMemoryInGB']:.3f} GB")
    at = (
        f"at {profile['recommendationLevel']} (p{profile['recommendationPercentile']:g} "
        f"{profile['recommendationLatencyInMs']:.1f} ms, {profile['measuredQueriesPerSecond']:.1f} req/s)"
    )
    if profile["recommendedCpu"] is None:
        lines.append(f"recommendation {at}: CPU and memory not measured")
    else:
        lines.append(
            f"recommended {at}: requestedCpu {profile['recommendedCpu']:g}, requestedMemoryInGB "
            f"{profile['recommendedMemoryInGB']:g}, WORKER_COUNT={profile['recommendedWorkerCount']}"
        )
    lines += [f"note: {note}" for note in profile["notes"]]
    if profile["kubernetesResources"]:
        lines += ["", "Kubernetes (the container's spec):", profile["kubernetesResources"].rstrip()]
    return "\n".join(lines)
