"""Which requests' telemetry is sent: OpenTelemetry's `OTEL_TRACES_SAMPLER` / `OTEL_TRACES_SAMPLER_ARG`, with the names
Azure Monitor's exporters and distros read.

Each request telemetry item costs the export thread far more CPU than a trivial request (about 16 µs against 80,
measured in the server), so sending every request of a busy endpoint costs a third of its CPU. Azure Monitor's own
exporters now default to a rate limit (5 traces a second); ours defaults to 100 a second in each worker: an endpoint
below that, as most model endpoints are, sends every request as the reference does, and a busy one sends a sample
whose `sampleRate` lets Application Insights count every request (its `itemCount`). A request the server failed
(a 5xx, or an error that escaped) is always sent.

| OTEL_TRACES_SAMPLER | OTEL_TRACES_SAMPLER_ARG | sent |
|---|---|---|
| `microsoft.rate_limited` (default) | requests a second (default 100) | about that many a second, in each worker |
| `microsoft.fixed_percentage`, `(parentbased_)traceidratio` | a ratio from 0 to 1 (default 1) | that share |
| `always_on`, `parentbased_always_on` | | every request |
| `always_off`, `parentbased_always_off` | | none but the failed ones |
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

DEFAULT_PER_SECOND = 100.0
# How often the rate limiter re-estimates the request rate, and how much of the old estimate each new one keeps.
WINDOW_S = 0.5
SMOOTHING = 0.5
_RATE_LIMITED = "microsoft.rate_limited"
_RATIOS = frozenset({"microsoft.fixed_percentage", "traceidratio", "parentbased_traceidratio"})
_ALL = frozenset({"always_on", "parentbased_always_on"})
_NONE = frozenset({"always_off", "parentbased_always_off"})
SAMPLERS = frozenset({_RATE_LIMITED, *_RATIOS, *_ALL, *_NONE})


@dataclass(frozen=True)
class SamplingPlan:
    # Requests a second (per worker), or None for a fixed ratio.
    per_second: float | None
    ratio: float


def sampling_plan(environ: Mapping[str, str]) -> tuple[SamplingPlan, list[str]]:
    """The sampling the environment asks for, and warnings about values not understood (the default is kept)."""
    name = environ.get("OTEL_TRACES_SAMPLER", "").strip().lower() or _RATE_LIMITED
    raw = environ.get("OTEL_TRACES_SAMPLER_ARG", "").strip()
    warnings = []
    if name not in SAMPLERS:
        warnings.append(f"OTEL_TRACES_SAMPLER={name} is not one this server knows; using {_RATE_LIMITED}")
        name, raw = _RATE_LIMITED, ""
    if name in _ALL:
        return SamplingPlan(None, 1.0), warnings
    if name in _NONE:
        return SamplingPlan(None, 0.0), warnings
    rate_limited = name == _RATE_LIMITED
    default = DEFAULT_PER_SECOND if rate_limited else 1.0
    try:
        value = float(raw) if raw else default
        if not (value >= 0 and (rate_limited or value <= 1)):
            raise ValueError
    except ValueError:
        accepted = "a number of requests a second" if rate_limited else "a ratio from 0 to 1"
        warnings.append(f"OTEL_TRACES_SAMPLER_ARG={raw} is not {accepted}; using {default:g}")
        value = default
    return (SamplingPlan(value, 1.0) if rate_limited else SamplingPlan(None, value)), warnings


class Sampler:
    """Decides, as a request ends, whether its telemetry is sent, and with what probability it was chosen."""

    def __init__(
        self,
        plan: SamplingPlan,
        clock: Callable[[], float] = time.monotonic,
        draw: Callable[[], float] = random.random,
    ) -> None:
        self.per_second = plan.per_second
        self.probability = plan.ratio
        self._random = draw
        self._clock = clock
        self._window_start = self._clock()
        self._seen = 0
        self._rate = 0.0

    def chosen(self, failed: bool) -> float | None:
        """The probability this request was chosen with, or None when it is not sent. Called on the request path."""
        if failed:
            return 1.0
        if self.per_second is not None:
            self._seen += 1
            now = self._clock()
            if now - self._window_start >= WINDOW_S:
                self._estimate(now)
        probability = self.probability
        if probability >= 1.0:
            return 1.0
        return probability if self._random() < probability else None

    def _estimate(self, now: float) -> None:
        assert self.per_second is not None
        observed = self._seen / (now - self._window_start)
        self._rate = observed if self._rate == 0.0 else SMOOTHING * self._rate + (1 - SMOOTHING) * observed
        self.probability = min(1.0, self.per_second / self._rate) if self._rate > 0 else 1.0
        self._window_start, self._seen = now, 0
