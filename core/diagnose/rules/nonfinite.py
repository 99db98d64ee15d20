"""loss_nonfinite on train records: a NaN or an infinity in the loss or grad_norm, including a
NaN the Trainer's ``logging_nan_inf_filter`` hid (a logged loss of exactly 0 after real losses,
with no grad_norm to tell). A broken record feeds no smoother and no other rule."""

from __future__ import annotations

import math

from sfttop.core.diagnose.episodes import Code, Episodes
from sfttop.core.diagnose.stats import tail_median
from sfttop.core.i18n import _
from sfttop.core.metrics import GRAD_NORM, LOSS
from sfttop.core.textfmt import fmt

from .base import Cols, Context, Point, TrainRule

_ZERO_LOSS_PRIOR = 0.01  # a logged loss of exactly 0 after losses above this is a masked NaN
_KEY = Code.LOSS_NONFINITE
isfinite = math.isfinite


class NonFinite(TrainRule):
    __slots__ = ()
    codes = (_KEY,)
    cools_only = True

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.h = ctx.tl.loss

    def observe(self, p: Point, ep: Episodes) -> None:
        loss, grad = p.loss, p.grad
        if loss is not None and not isfinite(loss):
            self._broken(p, ep, LOSS, loss, _("loss is {value} at step {step}").format(value=fmt(loss), step=p.step))
        elif grad is not None and not isfinite(grad):
            if loss is not None and isfinite(loss):
                hint = (
                    _("grad_norm is {grad} at step {step} while the logged loss is {loss}: the loss is NaN/inf but hidden by the Trainer's logging_nan_inf_filter").format(grad=fmt(grad), step=p.step, loss=fmt(loss))
                )
            else:
                hint = _("grad_norm is {value} at step {step}").format(value=fmt(grad), step=p.step)
            self._broken(p, ep, GRAD_NORM, grad, hint)
        elif loss == 0.0 and grad is None and self.h.values and self._masked():
            prior = tail_median(self.h.values, self.t.smooth_points)
            hint = (
                _("loss is exactly 0 at step {step} after {prior}: a NaN loss hidden by the Trainer's logging_nan_inf_filter").format(step=p.step, prior=fmt(prior))
            )
            self._broken(p, ep, LOSS, 0.0, hint)
        elif ep.open and _KEY in ep.open and (loss is not None or grad is not None):
            ep.cool(_KEY, p.step, self.t.clear_points)

    def _masked(self) -> bool:
        return tail_median(self.h.values, self.t.smooth_points) > _ZERO_LOSS_PRIOR

    def _broken(self, p: Point, ep: Episodes, name: str, v: float, hint: str) -> None:
        ep.hot(_KEY, p.step, name, v, hint)
        p.broken = True
        self.tl.gap()

    def quiet(self, c: Cols, i: int, j: int, ep: Episodes) -> int:
        memo = c.memo
        if memo is not None:  # (the whole block is looked at once: most are clean)
            clean = memo.get("finite")
            if clean is None:
                clean = memo["finite"] = _clean(c, 0, len(c.steps))
            if clean:
                return j - i
        return j - i if _clean(c, i, j) else 0

    def absorb(self, c: Cols, i: int, j: int, ep: Episodes) -> None:
        if ep.open and _KEY in ep.open and (c.loss is not None or c.grad is not None):
            ep.cool_run(_KEY, c.steps[i:j], self.t.clear_points)


def _clean(c: Cols, i: int, j: int) -> bool:
    """No NaN or infinity in records ``i..j-1``, and no loss of exactly 0 without a grad_norm."""
    whole = i == 0 and j == len(c.steps)  # (no copy of the columns)
    for col in (c.loss, c.grad, c.lr, c.acc, c.ent):
        if col is not None and not isfinite(sum(col if whole else col[i:j])):
            return False
    lc = c.loss
    return not (lc is not None and c.grad is None and 0.0 in (lc if whole else lc[i:j]))
