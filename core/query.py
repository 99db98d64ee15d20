"""Questions asked of a run's series by more than one judge: the checklist, the assessment, reports.

They live here, beside neither, so that the assessment does not depend on the checklist (or the
checklist on the assessment) for a median at a step or the best eval.
"""

from __future__ import annotations

import math
import operator
from bisect import bisect_left, bisect_right

from .diagnose import median
from .metrics import EVAL_LOSS, EVAL_TOKEN_ACC, LR_TOLERANCE
from .records import Kind
from .series import RunData, Series


def lr_direction(first: float, last: float) -> int:
    """+1 when the LR rose from ``first`` to ``last``, -1 when it fell, 0 when it held."""
    if last > first * (1 + LR_TOLERANCE):
        return 1
    if last < first * (1 - LR_TOLERANCE):
        return -1
    return 0


def logging_interval(data: RunData) -> int:
    """The run's logging interval in steps (median gap between the newest train records: the
    newest points of a series are always kept at full resolution)."""
    steps = data.index[Kind.TRAIN].steps[-101:]
    if len(steps) < 2:
        return 1
    return max(1, int(median(map(operator.sub, steps[1:], steps[:-1]))))


def value_at(s: Series | None, step: int) -> float | None:
    """The finite value logged at exactly ``step``, else None."""
    if s is None:
        return None
    i = bisect_left(s.steps, step)
    if i < len(s.steps) and s.steps[i] == step and math.isfinite(s.values[i]):
        return s.values[i]
    return None


def smoothed_at(s: Series | None, n: int, until: int | None = None) -> float | None:
    """The median of the last ``n`` finite values at or before step ``until`` (the latest when
    None): a noisy metric's "current" value. Only the last ``3 n`` points are looked at, so a
    NaN stretch longer than that reads as no value rather than as an old one."""
    if s is None:
        return None
    j = len(s) if until is None else bisect_right(s.steps, until)
    vals = [v for v in s.values[max(0, j - 3 * n) : j] if math.isfinite(v)][-n:]
    return median(vals) if vals else None


def best_eval(data: RunData, until: int | None = None) -> tuple[int, float, float | None] | None:
    """(step, eval_loss, eval accuracy) of the lowest finite eval_loss up to ``until``; ties go to
    the higher eval token accuracy, then to the earlier step."""
    s = data.get(EVAL_LOSS)
    if s is None:
        return None
    acc = data.get(EVAL_TOKEN_ACC)
    best: tuple[float, float, int] | None = None  # (loss, -accuracy, step): smallest wins
    best_acc: float | None = None
    for step, v in s.points():
        if until is not None and step > until:
            break
        if not math.isfinite(v):
            continue
        a = value_at(acc, step)
        key = best_key(v, a, step)
        if best is None or key < best:
            best, best_acc = key, a
    if best is None:
        return None
    return best[2], best[0], best_acc


def best_key(loss: float, acc: float | None, step: int) -> tuple[float, float, int]:
    """The order ``best_eval`` picks by (smallest first); the checklist keeps its running minimum."""
    return (loss, -acc if acc is not None else math.inf, step)
