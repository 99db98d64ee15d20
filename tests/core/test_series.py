"""The series store: exact counts, newest value wins, bounded memory that keeps spikes and NaN."""

from __future__ import annotations

import itertools
import math

from sfttop.core.records import Kind, Record
from sfttop.core.series import HIGH_WATER, HISTORY, RECENT, RunData, Series


def test_resumed_steps_count_once_and_newest_wins() -> None:
    s = Series()
    for step in (2, 4, 6, 8):
        s.add(step, float(step))
    assert s.add(6, 60.0) is False
    assert s.add(5, 5.0) is True  # a step never logged before
    assert list(s.steps) == [2, 4, 5, 6, 8] and s.values[3] == 60.0
    assert s.count == 5


def test_memory_is_bounded_and_count_stays_exact() -> None:
    s = Series()
    n = 200_000
    for i in range(1, n + 1):
        s.add(i, math.sin(i / 1000))
    assert s.count == n
    assert len(s) <= HIGH_WATER
    assert list(s.steps) == sorted(s.steps)
    assert list(s.steps[-RECENT:]) == list(range(n - RECENT + 1, n + 1))  # recent at full resolution
    assert s.raw_from <= HISTORY + 2


def test_decimated_history_keeps_spikes_dips_and_nan() -> None:
    s = Series()
    for i in range(1, 100_001):
        v = 1.0
        if i == 12_345:
            v = 50.0
        elif i == 23_456:
            v = -7.0
        elif i == 34_567:
            v = math.nan
        s.add(i, v)
    hist = dict(zip(s.steps[: s.raw_from], s.values[: s.raw_from]))
    assert hist.get(12_345) == 50.0
    assert hist.get(23_456) == -7.0
    assert 34_567 in hist and math.isnan(hist[34_567])


def test_replacing_inside_decimated_history_does_not_count_twice() -> None:
    s = Series()
    for i in range(1, 20_001):
        s.add(i, 1.0)
    assert s.raw_from > 0
    before = s.count
    assert s.add(777, 2.0) is False
    assert s.count == before


def test_rundata_counts_distinct_steps_through_compaction() -> None:
    d = RunData()
    for i in range(1, 50_001):
        d.add(Record(Kind.TRAIN, i * 10, {"loss": 1.0 / i, "grad_norm": 1.0}, epoch=i / 1000))
    for i in range(49_990, 50_001):  # a resume re-logs the last ten steps
        d.add(Record(Kind.TRAIN, i * 10, {"loss": 0.5, "grad_norm": 1.0}, epoch=i / 1000))
    assert d.count(Kind.TRAIN) == 50_000
    assert len(d.series["loss"]) <= HIGH_WATER
    assert d.series["loss"].values[-1] == 0.5


def test_history_covers_the_whole_run_however_long() -> None:
    # Folding again must not collapse what was folded before: the kept points still span the
    # run evenly (each stretch of the run is represented), at any length.
    s = Series()
    n = 300_000
    for i in range(1, n + 1):
        s.add(i * 10, 1.0 + (i % 97) / 97)
    hist = list(s.steps[: s.raw_from])
    assert hist[0] <= 10 * s.width
    gaps = [b - a for a, b in itertools.pairwise(hist)]
    assert max(gaps) <= 2 * s.width  # no hole bigger than two buckets
    assert len(s) <= HIGH_WATER
    assert s.raw_from <= HISTORY


def test_epochs_survive_folding() -> None:
    d = RunData()
    for i in range(1, 300_001):
        d.add(Record(Kind.TRAIN, i * 10, {"loss": 1.0}, epoch=3 * i / 300_000))
    epochs = {math.ceil(e - 1e-9) for e in d.index[Kind.TRAIN].values}
    assert epochs == {1, 2, 3}
