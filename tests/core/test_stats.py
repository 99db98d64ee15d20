"""The diagnoser's rolling structures: one value at a time (``push``, the record path) and a
stretch at a time (``extend``, the bulk path) leave them in the same state."""

from __future__ import annotations

from array import array

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sfttop.core.diagnose.stats import BlockMin, DebiasedEma, RollingMedian, median, sorted_median

values = st.lists(st.floats(0.0, 10.0, allow_nan=False), min_size=1, max_size=300)


def _slots(o: object) -> dict[str, object]:
    return {s: getattr(o, s) for s in type(o).__slots__}


@settings(max_examples=80, deadline=None)
@given(pre=values, seg=values, size=st.integers(1, 60))
def test_rolling_median_push_equals_extend(pre: list[float], seg: list[float], size: int) -> None:
    vals_a, vals_b = array("d"), array("d")
    a, b = RollingMedian(size), RollingMedian(size)
    for x in pre:
        vals_a.append(x)
        a.push(vals_a)
    vals_b.extend(pre)
    b.extend(vals_b)
    assert a.win == b.win
    for x in seg:
        vals_a.append(x)
        a.push(vals_a)
    vals_b.extend(seg)
    b.extend(vals_b)
    assert a.win == b.win and len(a.win) == min(size, len(vals_a))
    assert a.median() == median(vals_a[-size:]) == sorted_median(sorted(vals_a[-size:]))


@settings(max_examples=80, deadline=None)
@given(pre=values, seg=values, w=st.integers(1, 60))
def test_block_min_push_equals_extend_and_reset(pre: list[float], seg: list[float], w: int) -> None:
    a, b, c = BlockMin(w), BlockMin(w), BlockMin(w)
    for x in pre:
        a.push(x)
        b.push(x)
    for x in seg:
        a.push(x)
    b.extend(seg)
    c.reset(array("d", pre + seg))  # (blocks counted from the first value)
    assert _slots(a) == _slots(b) == _slots(c)
    # the bound: no window of w values ending at the newest is lower than it
    vals = pre + seg
    assert a.bound() <= min(vals[-w:])


@settings(max_examples=80, deadline=None)
@given(pre=st.lists(st.floats(0.0, 10.0, allow_nan=False), min_size=100, max_size=300), seg=values)
def test_debiased_ema_push_equals_extend(pre: list[float], seg: list[float]) -> None:
    a, b = DebiasedEma(), DebiasedEma()
    for x in pre:
        a.push(x)
        b.push(x)
    assert b.exact  # (extend is for an EMA past its debiasing)
    for x in seg:
        a.push(x)
    pre_b = b.preview(seg)
    assert pre_b == b.preview(seg)  # (a preview changes nothing)
    b.extend(seg, pre_b if len(seg) % 2 else None)  # with or without the preview
    assert _slots(a) == _slots(b)


@pytest.mark.parametrize("count", [0, 1, 5, 150])
def test_debiased_ema_reset_replays(count: int) -> None:
    vals = [1.0 + 0.1 * (i % 7) for i in range(count + 20)]
    a = DebiasedEma()
    for x in vals[:count]:
        a.push(x)
    raw = a.raw
    for x in vals[count:]:
        a.push(x)
    b = DebiasedEma()
    b.reset(raw, count, vals[count:])
    assert (b.raw, b.last, b.count, b.rise) == (a.raw, a.last, a.count, 0)
