"""nothing_trained: a loss (and grad_norm) of exactly 0 from the very first train record.

A cross-entropy loss is exactly 0 only when no token counts: every label masked (-100), an empty
completion-only template, a collator that drops the answers. Nothing is trained, however long
the run goes, and it shows at once: the first records say so, not a vanishing-gradient warning a
hundred steps later. A run that logged a real loss first is never judged here (a 0 after real
losses is the Trainer's masked NaN: ``nonfinite.py``).
"""

from __future__ import annotations

from sfttop.core.diagnose.episodes import Code, Episodes
from sfttop.core.i18n import _
from sfttop.core.metrics import LOSS

from .base import Cols, Context, Point, TrainRule

_KEY = Code.NOTHING_TRAINED
_RECORDS = 2  # consecutive all-zero records from the first that open it (one may be a glitch)


class NothingTrained(TrainRule):
    __slots__ = ("decided", "first", "zeros")
    codes = (_KEY,)
    # once a record with a real loss or gradient came, the rule has nothing more to say
    quiet_by_reach = True
    still_in_bulk = True

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.h = ctx.tl.loss
        self.decided = False  # a record with a loss or grad_norm other than 0 came
        self.zeros = 0  # all-zero records from the first (counted up to _RECORDS)
        self.first: int | None = None  # the first record's step

    def observe(self, p: Point, ep: Episodes) -> None:
        if self.decided:
            return
        loss, grad = p.loss, p.grad
        if loss is None:
            return
        if self.first is None:
            self.first = p.step
        if loss == 0.0 and (grad is None or grad == 0.0):
            if self.zeros < _RECORDS:
                self.zeros += 1
            if self.zeros >= _RECORDS:
                ep.hot(
                    _KEY,
                    p.step,
                    LOSS,
                    0.0,
                    (
                        _("loss and grad_norm exactly 0 from the first record (steps {first}-{step}): no token counts in the loss, so nothing is trained")
                        if grad is not None
                        else _("loss exactly 0 from the first record (steps {first}-{step}): no token counts in the loss, so nothing is trained")
                    ).format(first=self.first, step=p.step),
                )
            return
        self.decided = True
        ep.close(_KEY, p.step)

    def reach(self, c: Cols, i: int, j: int) -> int:
        return j - i if self.decided else 0
