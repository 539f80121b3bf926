"""The order of the work: the server started (or reached), sampled, loaded level by level, stopped; then the report,
written as profile.json and drawn as profile.png."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import shlex
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import psutil

from scoring_runtime.config import ENV_NAMES, FIELDS
from scoring_runtime.profiling import chart, launch, report, session
from scoring_runtime.profiling.dataset import Dataset
from scoring_runtime.profiling.errors import ProfileError
from scoring_runtime.profiling.launch import Target
from scoring_runtime.profiling.load import Level
from scoring_runtime.profiling.sampler import TreeSampler
from scoring_runtime.profiling.session import LevelResult, Plan

Say = Callable[[str], None]
MB = 1e6
_SECRET_FLAGS = {f"--{spec.metadata['cli']}" for spec in FIELDS.values() if not spec.repr and spec.metadata["cli"]}


def profile(
    args: argparse.Namespace, server_args: list[str], dataset: Dataset, levels: Sequence[Level], say: Say
) -> dict[str, Any]:
    plan = Plan(
        url="",
        bodies=dataset.bodies,
        headers={"Content-Type": args.content_type, **dict(args.header)},
        levels=levels,
        interval_s=args.measurement_interval,
        max_trials=args.max_trials,
        tolerance=args.stability_percentage / 100.0,
        percentile=args.percentile,
        warmup=args.warmup_requests,
        max_in_flight=args.max_in_flight,
        poisson=args.distribution == "poisson",
        seed=args.seed,
        timeout_s=args.request_timeout,
    )
    target: Target | None = None
    sampler: TreeSampler | None = None
    ready_at: float | None = None
    try:
        if args.url is not None:
            target = launch.attach(args.url, args.pid, args.startup_timeout)
            started = time.monotonic()
            sampler = _sampler(target.pid, args.sample_interval)
        else:
            target = launch.spawn(server_args, args.output / "server.log")
            say(f"started {shlex.join(_masked(target.command or []))} (its log: {target.log_path})")
            started = time.monotonic()
            sampler = _sampler(target.pid, args.sample_interval)
            launch.wait_ready(target, args.startup_timeout)
            ready_at = time.monotonic()
            say(f"ready after {ready_at - started:.1f} s")
        skipped = f" ({dataset.blank_lines} blank lines skipped)" if dataset.blank_lines else ""
        say(f"{len(dataset.bodies)} bodies from {dataset.path}{skipped}")
        memory_after_init = sampler.memory_now() if sampler is not None else None
        init_s = session.init_seconds(target.url)
        source = "metrics" if init_s is not None else "not measured"
        if init_s is None and ready_at is not None:
            init_s, source = ready_at - started, "time-to-ready"
        plan = dataclasses.replace(plan, url=target.url + args.path)
        results = asyncio.run(_load(plan, say))
        usages = sampler.usages() if sampler is not None else []
    finally:
        if sampler is not None:
            sampler.stop()
        if target is not None:
            target.stop()
    outcome = report.Outcome(
        plan=plan,
        dataset=dataset,
        content_type=args.content_type,
        results=results,
        usages=usages,
        started=started,
        ready_at=ready_at,
        init_s=init_s,
        init_source=source,
        memory_after_init=memory_after_init,
        memory_measure=None if sampler is None else ("pss" if all(u.pss is not None for u in usages) else "rss"),
        latency_target_s=args.latency_target_ms / 1000.0 if args.latency_target_ms is not None else None,
        workers=_workers(args, server_args),
        server=_server(target, server_args),
    )
    document = report.build(outcome)
    (args.output / "profile.json").write_text(json.dumps(document, indent=2) + "\n")
    chart.draw(args.output / "profile.png", _title(args, document), *_chart_points(document))
    return document


def _sampler(pid: int | None, interval: float) -> TreeSampler | None:
    if pid is None:
        return None
    try:
        return TreeSampler(pid, interval).start()
    except psutil.NoSuchProcess:
        return None  # it already exited: wait_ready says why
    except psutil.AccessDenied:
        raise ProfileError(f"--pid {pid}: not allowed to read that process (run the profile as its user)")


async def _load(plan: Plan, say: Say) -> list[LevelResult]:
    await session.warm_up(plan)
    results = [await session.measure(plan, level, say) for level in plan.levels]
    if not any(result.measured.success for result in results):
        first = next((result.first_error for result in results if result.first_error), None)
        raise ProfileError(f"every request failed; the first answer: {first}")
    return results


def _workers(args: argparse.Namespace, server_args: Sequence[str]) -> int:
    if args.workers is not None:
        return int(args.workers)
    for index, flag in enumerate(server_args):
        name, _, value = flag.partition("=")
        if name in ("--worker_count", "--worker-count"):
            value = value or (server_args[index + 1] if index + 1 < len(server_args) else "")
            return int(value) if value.isdigit() else 1
    value = os.environ.get("WORKER_COUNT", "1")
    return int(value) if value.isdigit() and int(value) > 0 else 1


def _server(target: Target, server_args: Sequence[str]) -> dict[str, Any]:
    settings = {
        name: (value if FIELDS[ENV_NAMES[name]].repr else "(secret)")
        for name, value in sorted(os.environ.items())
        if name in ENV_NAMES
    }
    return {
        "url": target.url,
        "pid": target.pid,
        "command": _masked(target.command) if target.command else None,
        "arguments": _masked(list(server_args)),
        "environment": settings,
    }


def _masked(command: Sequence[str]) -> list[str]:
    masked = list(command)
    for index, word in enumerate(masked):
        name, equals, _ = word.partition("=")
        if name.startswith("--") and "--" + name[2:].replace("-", "_") in _SECRET_FLAGS:
            if equals:
                masked[index] = f"{name}=(secret)"
            elif index + 1 < len(masked):
                masked[index + 1] = "(secret)"
    return masked


def _title(args: argparse.Namespace, document: dict[str, Any]) -> str:
    # The script with its folder: score.py alone names nothing, most scripts are called that.
    script = Path(args.entry_script).resolve() if args.entry_script else None
    what = f"{script.parent.name}/{script.name}" if script else (args.url or "the server")
    return f"scoring-runtime profile of {what} ({document['dataset']['bodies']} bodies)"


def _chart_points(
    document: dict[str, Any],
) -> tuple[list[chart.LevelPoint], list[chart.UsagePoint], float | None]:
    levels = [
        chart.LevelPoint(
            level["level"],
            level["latencyPercentile50InMs"],
            level["latencyPercentile90InMs"],
            level["latencyPercentile99InMs"],
            level["measuredQueriesPerSecond"],
            level["startInS"],
            level["endInS"],
        )
        for level in document["levels"]
    ]
    usages = [chart.UsagePoint(u["atInS"], u["cpu"], u["memoryInGB"] * 1000) for u in document["usage"]]
    return levels, usages, document["readyAtInS"]
