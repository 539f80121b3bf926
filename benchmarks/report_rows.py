"""The rows of one bench.py run, keyed by cell, and the small readings every part of the report makes of them."""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterable
from pathlib import Path
from typing import Any

Row = dict[str, Any]
Key = tuple[str, str, int, int]  # scenario, server, workers, concurrency
OURS = "scoring_runtime"


def load(path: Path) -> dict[Key, Row]:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return {(r["scenario"], r["server"], r["workers"], r["concurrency"]): r for r in rows}


def ratio(ours: float | None, theirs: float | None) -> float | None:
    return ours / theirs if ours is not None and theirs else None


def times(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}x" if value < 10 else f"{value:.1f}x"


def value(rows: dict[Key, Row], key: Key, field: str) -> float | None:
    row = rows.get(key)
    if row is None or (field.endswith("_ms") and not row["requests"]):
        return None  # no request was answered within the run: no latency to show
    return row.get(field)


def noise(rows: dict[Key, Row], scenario: str | None = None, field: str = "core_other_busy") -> float:
    """The median share of a core that other processes used during the reported runs (0 when not recorded)."""
    return float(statistics.median(r.get(field, 0.0) for k, r in rows.items() if scenario in (None, k[0])))


def errors(rows: dict[Key, Row], scenario: str, server: str, workers: int) -> int:
    """Errors wrk saw in every run of one server on one scenario: timed rounds, warm-ups and the memory phase."""
    mine = [r for k, r in rows.items() if k[:3] == (scenario, server, workers)]
    total = sum(r["errors_all_rounds"] + r.get("errors_warmup", 0) for r in mine)
    return int(total + (mine[0].get("errors_alone_load", 0) if mine else 0))


def verdict(passed: bool | None) -> str:
    return "not measured" if passed is None else "**pass**" if passed else "**FAIL**"


def worst(pairs: Iterable[tuple[str, float | None]]) -> tuple[str, float] | None:
    measured = [(label, r) for label, r in pairs if r is not None]
    return max(measured, key=lambda pair: pair[1]) if measured else None
