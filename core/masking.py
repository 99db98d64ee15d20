"""Values that stand in for a NaN: which logged values are masked, for the screen and the checklist.

With the HF Trainer's ``logging_nan_inf_filter`` (on by default) a NaN loss is left out of the
logged mean, so once every step is NaN the log says ``'loss': 0.0`` while grad_norm and entropy
(computed from the same NaN logits) say nan. Such a value is never a real number: charts draw
it as a NaN, cards say ``NaN (masked)``, and checklist windows count it as non-finite.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass

from . import metrics as M
from .series import RunData

# A value logged at a step where one of its witnesses is NaN/inf is masked (token accuracy on
# NaN logits comes out as 0).
MASK_WITNESSES: dict[str, tuple[str, ...]] = {
    M.LOSS: (M.GRAD_NORM, M.ENTROPY),
    M.TOKEN_ACC: (M.GRAD_NORM, M.ENTROPY),
    M.EVAL_LOSS: (M.EVAL_ENTROPY,),
    M.EVAL_TOKEN_ACC: (M.EVAL_LOSS, M.EVAL_ENTROPY),
}
# Without a grad_norm to tell, a train loss of exactly 0 after losses above this is the same
# hidden NaN (the diagnoser's rule too): cross-entropy of a language model never reaches 0.
MASKED_ZERO_AFTER = 0.01


@dataclass(frozen=True)
class Shown:
    """A metric's points as the screen shows them: masked values as NaN, and which those are."""

    steps: Sequence[int]
    values: Sequence[float]
    masked: frozenset[int]  # positions in ``values``


def shown_series(data: RunData, metric: str, last: int | None = None) -> Shown | None:
    """``metric``'s points (its ``last`` ones only, when given) with masked values as NaN."""
    s = data.get(metric)
    if s is None or not len(s):
        return None
    steps: Sequence[int] = s.steps
    values: Sequence[float] = s.values
    zero_after = MASKED_ZERO_AFTER if metric == M.LOSS else None
    high_before = False
    if last is not None and len(steps) > last:
        if zero_after is not None:  # a run of zeros longer than the tail is still masked
            high_before = any(map(zero_after.__lt__, values[:-last]))
        steps, values = steps[-last:], values[-last:]
    bad: list[int] = []
    for w in MASK_WITNESSES.get(metric, ()):
        ws = data.get(w)
        if ws is not None:
            bad.extend(nonfinite_steps(ws.steps, ws.values, from_step=steps[0]))
    values, masked = mask_values(steps, values, bad, zero_after, high_before)
    return Shown(steps, values, frozenset(masked))


def nonfinite_steps(steps: Sequence[int], values: Sequence[float], from_step: int | None = None) -> list[int]:
    """The steps (at or after ``from_step``) whose value is NaN or inf; one C-level ``sum`` when
    there are none."""
    lo = 0 if from_step is None else bisect_left(steps, from_step)
    if lo:
        steps, values = steps[lo:], values[lo:]
    if math.isfinite(sum(values)):
        return []
    isfinite = math.isfinite
    return [s for s, v in zip(steps, values) if not isfinite(v)]


def mask_values(
    steps: Sequence[int],
    values: Sequence[float],
    bad_steps: Sequence[int],
    zero_after: float | None = None,
    high_before: bool = False,
) -> tuple[Sequence[float], set[int]]:
    """``values`` with every masked one replaced by NaN (a copy only when one is), and the
    positions replaced. ``steps`` rise.

    A value is masked when its step is in ``bad_steps`` (a witness metric was NaN/inf there) or,
    with ``zero_after``, when it is exactly 0 after an earlier value above ``zero_after`` (or
    anywhere, when ``high_before``: such a value came before these points). Without bad steps
    or zeros (a healthy run) nothing is copied and nothing is looped over in Python.
    """
    masked: set[int] = set()
    n = len(steps)
    isfinite = math.isfinite
    if len(bad_steps) * 16 < n:  # a few bad steps: find each
        for s in bad_steps:
            i = bisect_left(steps, s)
            if i < n and steps[i] == s and isfinite(values[i]):
                masked.add(i)
    elif bad_steps:  # many: one pass
        bad = set(bad_steps)
        masked.update(i for i, s in enumerate(steps) if s in bad and isfinite(values[i]))
    if zero_after is not None and 0.0 in values:
        first_high = -1 if high_before else next((i for i, v in enumerate(values) if v > zero_after), None)
        if first_high is not None:
            index = values.index  # list and array('d') both search in C
            i = first_high
            while True:
                try:
                    i = index(0.0, i + 1)
                except ValueError:
                    break
                masked.add(i)
    if not masked:
        return values, masked
    out = list(values)
    for i in masked:
        out[i] = math.nan
    return out, masked


def masked_window(data: RunData, metric: str, steps: Sequence[int], values: Sequence[float]) -> Sequence[float]:
    """``values`` (of ``metric`` at ``steps``, a window of its series) with masked ones as NaN."""
    if not steps:
        return values
    bad: list[int] = []
    for w in MASK_WITNESSES.get(metric, ()):
        ws = data.get(w)
        if ws is not None:
            lo = bisect_left(ws.steps, steps[0])
            hi = bisect_left(ws.steps, steps[-1] + 1)
            bad.extend(nonfinite_steps(ws.steps[lo:hi], ws.values[lo:hi]))
    zero_after = MASKED_ZERO_AFTER if metric == M.LOSS else None
    high_before = False
    if zero_after is not None and 0.0 in values:
        s = data.get(metric)
        if s is not None:
            before = s.values[: bisect_left(s.steps, steps[0])]
            high_before = any(map(zero_after.__lt__, before))
    out, _masked = mask_values(steps, values, bad, zero_after, high_before)
    return out
