"""Which requests' telemetry is sent: OTEL_TRACES_SAMPLER read as Azure Monitor's exporters read it, and the rate
limiter that is the default."""

from __future__ import annotations

import random

import pytest

from scoring_runtime.observability.sampling import DEFAULT_PER_SECOND, Sampler, SamplingPlan, sampling_plan


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, SamplingPlan(DEFAULT_PER_SECOND, 1.0)),
        ({"OTEL_TRACES_SAMPLER": "microsoft.rate_limited", "OTEL_TRACES_SAMPLER_ARG": "5"}, SamplingPlan(5.0, 1.0)),
        (
            {"OTEL_TRACES_SAMPLER": "Microsoft.Fixed_Percentage", "OTEL_TRACES_SAMPLER_ARG": "0.25"},
            SamplingPlan(None, 0.25),
        ),
        ({"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.5"}, SamplingPlan(None, 0.5)),
        ({"OTEL_TRACES_SAMPLER": "parentbased_traceidratio"}, SamplingPlan(None, 1.0)),
        ({"OTEL_TRACES_SAMPLER": "always_on"}, SamplingPlan(None, 1.0)),
        ({"OTEL_TRACES_SAMPLER": "parentbased_always_off"}, SamplingPlan(None, 0.0)),
    ],
)
def test_the_sampler_variables(environ: dict[str, str], expected: SamplingPlan) -> None:
    assert sampling_plan(environ) == (expected, [])


@pytest.mark.parametrize(
    ("environ", "expected", "warning"),
    [
        ({"OTEL_TRACES_SAMPLER": "jaeger_remote"}, SamplingPlan(DEFAULT_PER_SECOND, 1.0), "jaeger_remote is not one"),
        ({"OTEL_TRACES_SAMPLER_ARG": "-1"}, SamplingPlan(DEFAULT_PER_SECOND, 1.0), "a number of requests a second"),
        ({"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "2"}, SamplingPlan(None, 1.0), "a ratio"),
        ({"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "half"}, SamplingPlan(None, 1.0), "ratio"),
    ],
)
def test_values_not_understood_keep_the_default_with_a_warning(
    environ: dict[str, str], expected: SamplingPlan, warning: str
) -> None:
    plan, warnings = sampling_plan(environ)
    assert plan == expected and len(warnings) == 1 and warning in warnings[0]


def test_failed_requests_are_always_sent() -> None:
    sampler = Sampler(SamplingPlan(None, 0.0))
    assert sampler.chosen(failed=False) is None
    assert sampler.chosen(failed=True) == 1.0


def test_a_ratio_sends_that_share_and_says_so() -> None:
    draws = random.Random(7)
    sampler = Sampler(SamplingPlan(None, 0.25), draw=draws.random)
    chosen = [sampler.chosen(failed=False) for _ in range(10_000)]
    sent = [probability for probability in chosen if probability is not None]
    assert set(sent) == {0.25}
    assert 2300 < len(sent) < 2700


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_rate_limit_sends_about_that_many_a_second_and_their_weights_count_every_request() -> None:
    clock, draws = Clock(), random.Random(3)
    sampler = Sampler(SamplingPlan(50.0, 1.0), clock=clock, draw=draws.random)
    sent: list[float] = []
    # 2000 requests a second for 10 s.
    for _ in range(20_000):
        clock.now += 0.0005
        probability = sampler.chosen(failed=False)
        if probability is not None:
            sent.append(probability)
    # The first half second is sent whole, before the first estimate of the rate; then about 50 a second.
    assert 1000 + 9.5 * 40 < len(sent) < 1000 + 9.5 * 60
    # Each stands for 1/probability requests: together, every request.
    # (A weight of about 40 each: the sum is within three standard deviations, about 2500.)
    assert 17_500 < sum(1 / probability for probability in sent) < 22_500


def test_below_the_rate_limit_every_request_is_sent() -> None:
    clock = Clock()
    sampler = Sampler(SamplingPlan(100.0, 1.0), clock=clock)
    for _ in range(1000):
        clock.now += 0.02  # 50 a second
        assert sampler.chosen(failed=False) == 1.0
