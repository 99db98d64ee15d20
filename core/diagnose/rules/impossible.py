"""impossible_loss: a negative train loss where the loss is a cross-entropy.

A cross-entropy is the mean of -log p over the tokens that count, never below 0: a negative one
is a bug in a custom loss, its scaling, or whatever rewrote the logged value, and every number
judged after it is suspect. It opens at the first such record. Preference and RL losses may be
negative; the diagnoser mutes this code for them (``episodes.MUTED``).
"""

from __future__ import annotations

from sfttop.core.diagnose.episodes import Code, Episodes
from sfttop.core.i18n import _
from sfttop.core.metrics import LOSS
from sfttop.core.textfmt import fmt

from .base import Cols, Context, Point, TrainRule

_KEY = Code.IMPOSSIBLE_LOSS
# A memorised loss computed in low precision lands a hair below 0 (Unsloth SFT logs -0.0003 at
# the end of a run that learnt its data by heart); a sign or scaling bug lands far below.
NEGATIVE = -0.01


class ImpossibleLoss(TrainRule):
    __slots__ = ()
    codes = (_KEY,)
    cools_only = True

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.h = ctx.tl.loss

    def observe(self, p: Point, ep: Episodes) -> None:
        x = p.loss
        if x is None:
            return
        if x < NEGATIVE:
            ep.hot(
                _KEY,
                p.step,
                LOSS,
                x,
                _("loss {loss} at step {step} is negative: a cross-entropy loss is never below 0").format(
                    loss=fmt(x), step=p.step
                ),
            )
        elif ep.open and _KEY in ep.open:
            ep.cool(_KEY, p.step, self.t.clear_points)

    def quiet_block(self, c: Cols, ep: Episodes) -> bool:
        lc = c.loss
        # (min skips a NaN after the first value: a NaN first makes it NaN, "not proven")
        return lc is None or _KEY in ep.muted or (bool(lc) and min(lc) >= NEGATIVE)

    def quiet(self, c: Cols, i: int, j: int, ep: Episodes) -> int:
        lc = c.loss
        if lc is None or _KEY in ep.muted:
            return j - i
        return j - i if min(lc[i:j]) >= NEGATIVE else 0

    def absorb(self, c: Cols, i: int, j: int, ep: Episodes) -> None:
        if c.loss is not None and ep.open and _KEY in ep.open:
            ep.cool_run(_KEY, c.steps[i:j], self.t.clear_points)
