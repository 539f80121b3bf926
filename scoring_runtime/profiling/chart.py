"""The profile as one PNG: latency percentiles and throughput by load level, and the server's CPU and memory over
time with the levels' measured windows shaded."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


@dataclass(frozen=True)
class LevelPoint:
    label: str
    p50_ms: float | None
    p90_ms: float | None
    p99_ms: float | None
    throughput: float
    start_s: float  # the measured windows, from the start of sampling
    end_s: float


@dataclass(frozen=True)
class UsagePoint:
    at_s: float
    cpu: float
    memory_mb: float


def draw(
    path: Path, title: str, levels: Sequence[LevelPoint], usages: Sequence[UsagePoint], ready_s: float | None
) -> None:
    # The Figure API without pyplot: no global state, no GUI backend chosen from the environment.
    figure = Figure(figsize=(10, 7), dpi=72, layout="constrained")
    FigureCanvasAgg(figure)
    grid = figure.add_gridspec(2, 2)
    latency, throughput, usage = figure.add_subplot(grid[0, 0]), figure.add_subplot(grid[0, 1]), None
    labels = [level.label for level in levels]
    positions = list(range(len(levels)))
    for name, values, style in (
        ("p50", [level.p50_ms for level in levels], "o-"),
        ("p90", [level.p90_ms for level in levels], "s-"),
        ("p99", [level.p99_ms for level in levels], "^-"),
    ):
        latency.plot(positions, [float("nan") if v is None else v for v in values], style, label=name)
    latency.set_xticks(positions, labels)
    latency.set_xlabel("load level")
    latency.set_ylabel("latency (ms)")
    latency.set_ylim(bottom=0)
    latency.legend(loc="upper left")
    latency.grid(alpha=0.3)
    latency.set_title("Latency by load level")
    throughput.bar(positions, [level.throughput for level in levels], color="tab:green")
    throughput.set_xticks(positions, labels)
    throughput.set_xlabel("load level")
    throughput.set_ylabel("successful requests / s")
    throughput.grid(alpha=0.3, axis="y")
    throughput.set_title("Throughput by load level")
    usage = figure.add_subplot(grid[1, :])
    if usages:
        times = [point.at_s for point in usages]
        usage.plot(times, [point.cpu for point in usages], color="tab:blue", label="CPU (cores)")
        memory = usage.twinx()
        memory.plot(times, [point.memory_mb for point in usages], color="tab:red", label="memory (MB)")
        memory.set_ylabel("memory (MB)", color="tab:red")
        memory.set_ylim(bottom=0)
        usage.set_ylim(bottom=0)
        if ready_s is not None:
            usage.axvline(ready_s, color="0.4", linestyle="--", linewidth=1)
            usage.text(
                ready_s, 1.0, " ready", ha="left", va="bottom", transform=usage.get_xaxis_transform(), fontsize=8
            )
        for index, level in enumerate(levels):
            usage.axvspan(level.start_s, level.end_s, color="0.85" if index % 2 else "0.92", zorder=0)
            usage.text((level.start_s + level.end_s) / 2, 1.0, level.label, ha="center", va="bottom",
                       transform=usage.get_xaxis_transform(), fontsize=8)  # fmt: skip
    else:
        usage.text(0.5, 0.5, "CPU and memory not measured (--url without --pid)", ha="center", va="center",
                   transform=usage.transAxes)  # fmt: skip
    usage.set_xlabel("time (s); shaded: each level's measured windows")
    usage.set_ylabel("CPU (cores)", color="tab:blue")
    usage.grid(alpha=0.3)
    figure.suptitle(title)
    figure.savefig(path)
