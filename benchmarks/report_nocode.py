"""RESULTS.md's section on the no-code scenarios (bench_nocode.py): their targets, and the ONNX figures and MLServer's
adaptive batching for context.

Kept apart from report.py, which renders it, so that each stays readable; it reads the same rows.
"""

from __future__ import annotations

from bench_nocode import ADAPTIVE_BATCHING, NO_CODE
from report_rows import OURS, Key, Row, ratio, times, value, verdict

__all__ = ["COLORS", "NO_CODE", "PEERS", "nocode_targets"]
# The servers ours is measured against, as a table cell names them; MLServer first, for the scenarios it is in.
# Plain `mlserver` only: the targets are against MLServer on its defaults, not `mlserver-batching`.
PEERS = {"mlserver": "mlserver", "reference": "ref"}
BATCHING = "mlserver-batching"
COLORS = {"mlserver w1": "tab:purple", f"{BATCHING} w1": "tab:pink"}  # the chart's, for report.py
# (scenario, peer, field, concurrency, bound, at most): ours over the peer's, one worker.
TARGETS = [
    ("v2_sklearn", "mlserver", "rps", 8, 3.0, False),
    ("v2_sklearn", "mlserver", "p99_ms", 64, 1 / 3, True),
    ("score_sklearn", "reference", "rps", 8, 5.0, False),
]
NAMES = {"mlserver": "MLServer's", "reference": "the reference's (a hand-written score.py)"}


def _ratio(rows: dict[Key, Row], ours: Key, theirs: Key, field: str) -> float | None:
    return ratio(value(rows, ours, field), value(rows, theirs, field))


def target_line(rows: dict[Key, Row], target: tuple[str, str, str, int, float, bool]) -> str:
    scenario, peer, field, concurrency, bound, at_most = target
    got = _ratio(rows, (scenario, OURS, 1, concurrency), (scenario, peer, 1, concurrency), field)
    if at_most:
        what = f"p99 at most 1/{1 / bound:g} of {NAMES[peer]}"
        passed = None if got is None else got <= bound
    else:
        what = f"req/s at least {bound:g}x {NAMES[peer]}"
        passed = None if got is None else got >= bound
    return f"| {scenario}, 1 worker, c={concurrency}: {what} | {times(got)} | {verdict(passed)} |"


def onnx_context(rows: dict[Key, Row]) -> str:
    """Ours on ONNX beside ours on scikit-learn: MLServer has no ONNX runtime, so there is no peer to judge by."""
    rps = _ratio(rows, ("v2_onnx", OURS, 1, 8), ("v2_sklearn", OURS, 1, 8), "rps")
    p99 = _ratio(rows, ("v2_onnx", OURS, 1, 64), ("v2_sklearn", OURS, 1, 64), "p99_ms")
    if rps is None and p99 is None:
        return ""
    return (
        f"For context, not a target: ours on `v2_onnx` (the same classifier through ONNX Runtime, FP32) makes "
        f"{times(rps)} the req/s of ours on `v2_sklearn` at c=8, with {times(p99)} its p99 at c=64. MLServer "
        "1.7.1 has no ONNX runtime to set against it."
    )


def answers(rows: dict[Key, Row]) -> str:
    """Whether every server's answer matched scikit-learn's own, computed from the model file by the benchmark."""
    wrong = sorted({f"{k[1]} w{k[2]} on {k[0]}" for k, r in rows.items() if not r.get("answer_matches_floor", True)})
    checked = "Every server's first answer was checked against scikit-learn's own predict (V2) or predict_proba "
    return checked + ("(/score): all matched." if not wrong else f"(/score): these differed: {', '.join(wrong)}.")


def batching(rows: dict[Key, Row]) -> str:
    """What the `mlserver-batching` row is, when the run has one: without it, a faster MLServer row would read as
    MLServer's own defaults."""
    if not any(k[1] == BATCHING for k in rows):
        return ""
    size, wait = ADAPTIVE_BATCHING["max_batch_size"], ADAPTIVE_BATCHING["max_batch_time"]
    return (
        f"MLServer's adaptive batching is off by default; the `{BATCHING}` row of `v2_sklearn` turns it on, for "
        f"context and judged by no target: `max_batch_size` {size}, ours' batch cap, and `max_batch_time` "
        f"{wait * 1000:g} ms, a small wait, as near as MLServer allows to ours, which waits for none. "
    )


def conduct(mine: dict[Key, Row]) -> list[str]:
    """No errors, and an access-log line for every request, in each no-code run of ours: as issue 18 asks of all."""
    ours = [r for k, r in mine.items() if k[1] == OURS]
    if not ours:
        return []
    errors = sum(r["errors_all_rounds"] + r.get("errors_warmup", 0) + r.get("errors_alone_load", 0) for r in ours)
    logged = {k[0]: r["log_bytes_per_request"] for k, r in mine.items() if k[1] == OURS}
    silent = sorted(name for name, size in logged.items() if size <= 0)
    span = f"{min(logged.values()):.0f} to {max(logged.values()):.0f} bytes of log per request"
    span += f"; none on {', '.join(silent)}" if silent else ""
    return [
        f"| no errors in any no-code run of ours | {errors} errors | {verdict(errors == 0)} |",
        f"| access logging on (default settings) in every no-code run of ours | {span} | {verdict(not silent)} |",
    ]


def nocode_targets(rows: dict[Key, Row]) -> list[str]:
    """The section, or nothing when the run had no no-code scenario."""
    mine = {k: r for k, r in rows.items() if k[0] in NO_CODE}
    if not mine:
        return []
    lines = [
        "## No-code serving targets",
        "",
        "The iris classifier of `sample_models/` served with no entry script, one worker each. MLServer "
        "(mlserver-sklearn) runs in process (`parallel_workers: 0`; its default worker pool fails to start on this "
        "Python and uvloop), on its other defaults. In these scenarios' tables ours is divided by MLServer's "
        "figures (`v2_sklearn`) or the reference's (`score_sklearn`); they have no floor. "
        + batching(mine)
        + answers(mine),
        "",
        "| target | measured | result |",
        "|---|---|---|",
        *(target_line(rows, target) for target in TARGETS),
        *conduct(mine),
        "",
    ]
    context = onnx_context(rows)
    return [*lines, context, ""] if context else lines
