"""The rules, in process: windows and stability, percentiles, the recommendation, schedules, the dataset."""

from __future__ import annotations

import itertools
import random
from pathlib import Path

import pytest

from scoring_runtime.profiling import recommend
from scoring_runtime.profiling.dataset import is_json, load
from scoring_runtime.profiling.errors import ProfileError
from scoring_runtime.profiling.load import Level, constant_schedule, poisson_schedule
from scoring_runtime.profiling.recommend import Candidate
from scoring_runtime.profiling.windows import Sample, Window, combine, is_stable, latency_of, percentile_of, within


def window(start: float, latencies: list[float], failed: int = 0, seconds: float = 1.0) -> Window:
    samples = [Sample(start, start, start + latency, True) for latency in latencies]
    samples += [Sample(start, start, start + 0.001, False)] * failed
    return Window(start, start + seconds, tuple(samples))


def test_percentiles_interpolate_between_ranks() -> None:
    assert percentile_of([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile_of([5.0], 99.9) == 5.0
    assert percentile_of(list(range(101)), 90) == 90
    with pytest.raises(ValueError):
        percentile_of([], 50)


def test_latency_counts_only_successes_and_runs_from_the_due_time() -> None:
    samples = [Sample(0.0, 0.5, 1.0, True), Sample(0.0, 0.0, 9.0, False)]
    assert latency_of(samples, None) == 1.0 and latency_of(samples, 50) == 1.0
    assert latency_of(samples[1:], 50) is None


def test_stable_needs_three_windows_within_the_tolerance() -> None:
    steady = [window(k, [0.020] * 50) for k in range(3)]
    assert not is_stable(steady[:2], 90, 0.1)
    assert is_stable(steady, 90, 0.1)
    slower = [*steady[:2], window(2, [0.025] * 50)]  # latency 25 % up
    assert not is_stable(slower, 90, 0.1)
    fewer = [*steady[:2], window(2, [0.020] * 40)]  # throughput 20 % down
    assert not is_stable(fewer, 90, 0.1)
    assert is_stable([window(0, [0.020] * 30), *steady], 90, 0.1)  # the last three count
    assert not is_stable([*steady[:2], window(2, [], failed=3)], 90, 0.1)  # nothing succeeded: no latency


def test_within_compares_max_to_min() -> None:
    assert within([10.0, 11.0, 10.5], 0.1) and not within([10.0, 11.5], 0.1)
    assert within([0.0, 0.0], 0.1) and not within([0.0, 1.0], 0.1)


def test_combined_windows() -> None:
    measured = combine([window(0, [0.01, 0.03]), window(1, [0.02], failed=1)])
    assert (measured.total, measured.success, measured.seconds) == (4, 3, 2.0)
    assert measured.throughput == 1.5 and measured.success_rate == 0.75
    assert measured.mean_s == pytest.approx(0.02) and measured.percentiles_s[50.0] == pytest.approx(0.02)
    nothing = combine([window(0, [], failed=2)])
    assert nothing.mean_s is None and nothing.percentiles_s == {} and nothing.throughput == 0
    assert combine([Window(0, 0, ())]).throughput == 0 and combine([Window(0, 0, ())]).success_rate == 0


def test_the_level_chosen_is_the_knee() -> None:
    levels = [Candidate(40, 1, 0.021), Candidate(80, 1, 0.022), Candidate(82, 1, 0.045), Candidate(81, 1, 0.09)]
    assert recommend.choose(levels, None) == recommend.Choice(1, None)  # 80 is within 5 % of 82
    assert recommend.choose(levels, 0.030) == recommend.Choice(1, True)
    assert recommend.choose(levels, 0.0215) == recommend.Choice(0, True)
    assert recommend.choose(levels, 0.010) == recommend.Choice(0, False)  # none meets it: the fastest


def test_failing_levels_and_rates_not_kept_up_with_are_passed_over() -> None:
    levels = [Candidate(40, 1, 0.02), Candidate(90, 0.9, 0.02), Candidate(95, 1, 0.5, keeps_up=False)]
    assert recommend.choose(levels, None).index == 0
    assert recommend.choose([Candidate(10, 0.5, 0.1), Candidate(20, 0.8, 0.2)], None).index == 1
    assert recommend.choose([Candidate(10, 1, 0.1, False), Candidate(20, 1, 0.2, False)], None).index == 1
    with pytest.raises(ValueError):
        recommend.choose([Candidate(0, 0, None)], None)


def test_cpu_memory_and_workers() -> None:
    assert recommend.cpu([]) is None
    assert recommend.cpu([0.01] * 10) == 0.1  # the floor
    assert recommend.cpu([0.5] * 9 + [3.0]) == pytest.approx(0.9)  # p90 0.75, ×1.15 = 0.8625, rounded up
    assert recommend.cpu([1.0] * 10) == pytest.approx(1.2)  # 1.15 rounded up
    assert recommend.memory_gb(None) is None
    assert recommend.memory_gb(10_000_000) == 0.25
    assert recommend.memory_gb(400_000_000) == pytest.approx(0.5)  # 0.46 rounded up
    assert recommend.round_up(0.3, 0.1) == 0.3
    assert [recommend.worker_count(c) for c in (None, 0.1, 1.2, 1.5, 3.4)] == [None, 1, 1, 2, 3]


def test_the_worker_note_and_the_kubernetes_block() -> None:
    assert recommend.worker_note(0.05, 1, 0, 3) is not None
    assert recommend.worker_note(0.05, 1, 2, 3) is None  # the knee is the last level: no evidence of waiting
    assert recommend.worker_note(0.9, 1, 0, 3) is None and recommend.worker_note(None, 1, 0, 3) is None
    block = recommend.kubernetes_resources(0.2, 0.5, 1)
    assert block == (
        'resources:\n  requests:\n    cpu: "200m"\n    memory: "477Mi"\n  limits:\n    memory: "477Mi"\n'
        'env:\n  - name: WORKER_COUNT\n    value: "1"\n'
    )
    assert recommend.kubernetes_resources(None, 0.5, 1) is None


def test_schedules() -> None:
    assert list(itertools.islice(constant_schedule(4.0, 10.0), 5)) == [10.0, 10.25, 10.5, 10.75, 11.0]
    due = list(itertools.islice(poisson_schedule(100.0, 0.0, random.Random(1)), 20001))
    gaps = [b - a for a, b in itertools.pairwise(due)]
    assert due[0] == 0.0 and min(gaps) > 0
    assert due[-1] / 20000 == pytest.approx(0.01, rel=0.05)  # mean gap 1/rate
    assert min(gaps) < 0.001 < 0.03 < max(gaps)  # exponential: short and long gaps alike
    assert list(itertools.islice(poisson_schedule(5.0, 0.0, random.Random(7)), 5)) == list(
        itertools.islice(poisson_schedule(5.0, 0.0, random.Random(7)), 5)
    )


def test_level_labels() -> None:
    assert Level("concurrency", 4).label == "c=4" and Level("rate", 12.5).label == "12.5/s"


def test_a_dataset_of_json_lines(tmp_path: Path) -> None:
    path = tmp_path / "d.txt"
    path.write_bytes(b'{"a": 1}\r\n\n  \n[1, 2]\n"\xc3\xa9"')
    data = load(path, "application/json")
    assert data.bodies == (b'{"a": 1}', b"[1, 2]", b'"\xc3\xa9"') and data.blank_lines == 2
    assert data.average_bytes == 6.0
    assert is_json("application/json; charset=utf-8") and is_json("application/vnd.x+json") and not is_json("text/csv")
    path.write_text("a,b\n1,2\n")
    assert load(path, "text/csv").bodies == (b"a,b", b"1,2")


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"", "has no request bodies"),
        (b"\n \n\n", "has no request bodies"),
        (b'{"a": 1}\n{"a": \xff}\n', "line 2 is not UTF-8 (byte 7 of the line)"),
        (b'{"a": 1}\n\n{"a": 1,}\n', "line 3 is not valid JSON"),
        (b"1,2\n", "line 1 is not valid JSON"),
    ],
)
def test_a_dataset_refused(tmp_path: Path, content: bytes, words: str) -> None:
    path = tmp_path / "d.txt"
    path.write_bytes(content)
    with pytest.raises(ProfileError, match=words.replace("(", r"\(").replace(")", r"\)")):
        load(path, "application/json")


def test_a_dataset_that_cannot_be_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ProfileError, match="does not exist"):
        load(tmp_path / "missing.txt", "application/json")
    with pytest.raises(ProfileError, match="is a folder"):
        load(tmp_path, "application/json")

    def denied(self: Path) -> bytes:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "read_bytes", denied)
    with pytest.raises(ProfileError, match="cannot read --input-dataset .*: Permission denied"):
        load(tmp_path / "locked.txt", "application/json")
