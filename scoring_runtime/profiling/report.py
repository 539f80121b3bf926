"""profile.json, with Azure ML's field names: the recommendation and the figures of the level it was made at on top,
then a row per load level, the resources sampled over time, and how the profile was made."""

from __future__ import annotations

import os
import platform
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from typing import Any

import psutil

from scoring_runtime._version import __version__
from scoring_runtime.profiling import recommend
from scoring_runtime.profiling.dataset import Dataset
from scoring_runtime.profiling.sampler import Usage, between
from scoring_runtime.profiling.session import LevelResult, Plan
from scoring_runtime.profiling.windows import PERCENTILES, percentile_of

GB = recommend.GB
# The client used more than this many cores over a level: it, not the server, may have set the pace.
BUSY_CLIENT = 0.8
_AZURE_PERCENTILES = {50.0: "50", 90.0: "90", 95.0: "95", 99.0: "99", 99.9: "999"}


@dataclass(frozen=True)
class Outcome:
    plan: Plan
    dataset: Dataset
    content_type: str
    results: Sequence[LevelResult]
    usages: Sequence[Usage]  # the server tree's samples; empty when not measured
    started: float  # time.monotonic() when sampling (or the load) began: the chart's zero
    ready_at: float | None  # when /ready first answered 200, for a server started here
    init_s: float | None
    init_source: str  # "metrics" or "time-to-ready" or "not measured"
    memory_after_init: int | None  # bytes
    memory_measure: str | None  # "pss" or "rss"; None when not measured
    latency_target_s: float | None
    workers: int
    server: dict[str, Any]


def latency_fields(result: LevelResult) -> dict[str, Any]:
    measured = result.measured
    fields: dict[str, Any] = {"averageLatencyInMs": _ms(measured.mean_s)}
    for percentile in PERCENTILES:
        fields[f"latencyPercentile{_AZURE_PERCENTILES[percentile]}InMs"] = _ms(measured.percentiles_s.get(percentile))
    fields |= {
        "measuredQueriesPerSecond": round(measured.throughput, 2),
        "totalQueries": measured.total,
        "successQueries": measured.success,
        "successRate": round(100.0 * measured.success_rate, 2),
    }
    return fields


def level_row(result: LevelResult, usages: Sequence[Usage], outcome: Outcome) -> dict[str, Any]:
    measured = result.measured
    during = between(usages, measured.start, measured.end)
    cpus = [usage.cpu for usage in during]
    requests = measured.total
    return {
        "level": result.level.label,
        "mode": result.level.mode,
        "value": result.level.value,
        "stable": result.stable,
        "windows": len(result.windows),
        "measuredSeconds": round(measured.seconds, 3),
        **latency_fields(result),
        "cpuPercentile90": round(percentile_of(cpus, 90.0), 3) if cpus else None,
        "maxUtilizedCpu": round(max(cpus), 3) if cpus else None,
        "maxUtilizedMemoryInGB": round(max(usage.memory for usage in during) / GB, 3) if during else None,
        "clientCpu": round(result.client_cpu, 3),
        "clientCpuPerRequestInMs": round(result.client_cpu * measured.seconds / requests * 1000, 3)
        if requests
        else None,
        "waitedForSlot": result.waited,
        "firstError": result.first_error,
        "startInS": round(measured.start - outcome.started, 3),
        "endInS": round(measured.end - outcome.started, 3),
    }


def build(outcome: Outcome) -> dict[str, Any]:
    results, usages, plan = outcome.results, outcome.usages, outcome.plan
    rows = [level_row(result, usages, outcome) for result in results]
    percentile = plan.percentile
    candidates = [
        recommend.Candidate(
            r.measured.throughput,
            r.measured.success_rate,
            r.measured.percentiles_s.get(percentile),
            r.level.mode != "rate" or r.measured.throughput >= recommend.KEEPS_UP * r.level.value,
        )
        for r in results
    ]
    choice = recommend.choose(candidates, outcome.latency_target_s)
    chosen = results[choice.index]
    cpu_at_choice = [u.cpu for u in between(usages, chosen.measured.start, chosen.measured.end)]
    peak = max((usage.memory for usage in usages), default=None)
    if outcome.memory_after_init is not None:
        peak = max(peak or 0, outcome.memory_after_init)
    serving = [usage for usage in usages if outcome.ready_at is None or usage.at > outcome.ready_at]
    cpu = recommend.cpu(cpu_at_choice)
    memory = recommend.memory_gb(peak)
    workers = recommend.worker_count(cpu)
    cpu_p90 = percentile_of(cpu_at_choice, 90.0) if cpu_at_choice else None
    notes = _notes(rows, plan, choice, outcome)
    worker_note = recommend.worker_note(cpu_p90, outcome.workers, choice.index, len(results))
    notes += [worker_note] if worker_note else []
    return {
        "state": "Succeeded",
        "recommendedCpu": cpu,
        "recommendedMemoryInGB": memory,
        "recommendedWorkerCount": workers,
        "recommendationLatencyInMs": _ms(chosen.measured.percentiles_s.get(percentile)),
        "recommendationLevel": chosen.level.label,
        "recommendationPercentile": percentile,
        "latencyTargetInMs": _ms(outcome.latency_target_s),
        "latencyTargetMet": choice.target_met,
        # Under load: the CPU of imports and init() is start-up's, not what serving needs.
        "maxUtilizedCpu": round(max(u.cpu for u in serving), 3) if serving else None,
        "maxUtilizedMemoryInGB": round(peak / GB, 3) if peak is not None else None,
        **latency_fields(chosen),
        "requestedCpu": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "requestedMemoryInGB": round(_total_memory() / GB, 2),
        "initTimeInMs": _ms(outcome.init_s),
        "initTimeSource": outcome.init_source,
        "readyAtInS": round(outcome.ready_at - outcome.started, 3) if outcome.ready_at is not None else None,
        "memoryAfterInitInGB": round(outcome.memory_after_init / GB, 3) if outcome.memory_after_init else None,
        "memoryMeasure": outcome.memory_measure,
        "kubernetesResources": recommend.kubernetes_resources(cpu, memory, workers),
        "notes": notes,
        "levels": rows,
        "usage": [
            {
                "atInS": round(u.at - outcome.started, 3),
                "cpu": round(u.cpu, 3),
                "memoryInGB": round(u.memory / GB, 4),
                "rssInGB": round(u.rss / GB, 4),
                "processes": u.processes,
            }
            for u in usages
        ],  # fmt: skip
        "load": {
            "client": f"aiohttp {metadata.version('aiohttp')}",
            "url": plan.url,
            "mode": plan.levels[0].mode,
            "distribution": ("poisson" if plan.poisson else "constant") if plan.levels[0].mode == "rate" else None,
            "measurementIntervalInMs": round(plan.interval_s * 1000),
            "maxTrials": plan.max_trials,
            "stabilityPercentage": round(plan.tolerance * 100, 3),
            "warmupRequests": plan.warmup,
            "maxInFlight": plan.max_in_flight,
        },
        "dataset": {
            "path": str(outcome.dataset.path),
            "bodies": len(outcome.dataset.bodies),
            "blankLinesSkipped": outcome.dataset.blank_lines,
            "averageBytes": round(outcome.dataset.average_bytes, 1),
            "contentType": outcome.content_type,
        },
        "server": outcome.server,
        "versions": {"python": platform.python_version(), "scoringRuntime": __version__},
    }


def _notes(rows: Sequence[dict[str, Any]], plan: Plan, choice: recommend.Choice, outcome: Outcome) -> list[str]:
    notes = []
    for row in rows:
        if not row["stable"]:
            notes.append(
                f"{row['level']} was not stable within {plan.max_trials} windows (throughput and p{plan.percentile:g} "
                f"within {plan.tolerance * 100:g} % over 3 windows): its figures are its last 3 windows'"
            )
        if row["clientCpu"] >= BUSY_CLIENT:
            notes.append(
                f"at {row['level']} the load generator used {row['clientCpu']:.2f} core: it, not the server, may have "
                "set the pace"
            )
        if row["waitedForSlot"]:
            notes.append(
                f"at {row['level']} {row['waitedForSlot']} requests found --max-in-flight {plan.max_in_flight} "
                "requests outstanding and waited in the client; the wait is counted in their latency"
            )
    if choice.target_met is False:
        notes.append(
            f"no level met the latency target of {_ms(outcome.latency_target_s)} ms at p{plan.percentile:g}: the "
            "recommendation is for the level with the lowest latency"
        )
    if not outcome.usages:
        notes.append("CPU and memory were not measured: give --pid with --url to sample the server's process tree")
    return notes


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)


def _total_memory() -> int:
    return int(psutil.virtual_memory().total)
