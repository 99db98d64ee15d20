"""loss_nonfinite on train records: a NaN or an infinity in the loss or grad_norm, including a
NaN the Trainer's ``logging_nan_inf_filter`` hid (a logged loss of exactly 0 after real losses,
with no grad_norm to tell). A broken record feeds no smoother and no other rule.

steps_skipped: a NaN/inf grad_norm with a finite loss while a moving learning rate stays where it
was is the fp16 loss scaler skipping the step (the optimizer did not run, so the scheduler did not
step either): the weights are intact, and it is counted as information. A NaN the filter hides
leaves the schedule moving. With a constant LR the two look alike, and the record is judged a
NaN. ``fp16_skip_run`` skipped records in a row are a critical loss_nonfinite: the scaler finds
no scale that works and nothing is trained.
"""

from __future__ import annotations

import math

from sfttop.core.diagnose.episodes import Code, Episodes
from sfttop.core.diagnose.stats import tail_median
from sfttop.core.i18n import _, ngettext
from sfttop.core.metrics import GRAD_NORM, LOSS, LR_TOLERANCE
from sfttop.core.textfmt import fmt

from .base import Cols, Context, Point, TrainRule

_ZERO_LOSS_PRIOR = 0.01  # a logged loss of exactly 0 after losses above this is a masked NaN
_KEY = Code.LOSS_NONFINITE
_SKIP = Code.STEPS_SKIPPED
isfinite = math.isfinite


class NonFinite(TrainRule):
    __slots__ = ("skip_from", "skip_run", "skipped")
    codes = (_KEY, _SKIP)
    # (skip_run > 0 only while steps_skipped or loss_nonfinite is open: a skip holds one of them,
    # and every record that cools them resets it first)
    cools_only = True

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.h = ctx.tl.loss
        self.skipped = 0  # records skipped by the loss scaler, in all
        self.skip_run = 0  # ... in a row up to the latest record
        self.skip_from = 0  # the step of the first of them

    def observe(self, p: Point, ep: Episodes) -> None:
        loss, grad = p.loss, p.grad
        if loss is not None and not isfinite(loss):
            self.skip_run = 0
            self._broken(p, ep, LOSS, loss, _("loss is {value} at step {step}").format(value=fmt(loss), step=p.step))
        elif grad is not None and not isfinite(grad):
            self._bad_grad(p, ep, loss, grad)
        elif loss == 0.0 and grad is None and self.h.values and self.ctx.objective.cross_entropy and self._masked():
            self.skip_run = 0
            prior = tail_median(self.h.values, self.t.smooth_points)
            hint = (
                _("loss is exactly 0 at step {step} after {prior}: a NaN loss hidden by the Trainer's logging_nan_inf_filter").format(step=p.step, prior=fmt(prior))
            )
            self._broken(p, ep, LOSS, 0.0, hint)
        else:
            self.skip_run = 0
            if ep.open and (loss is not None or grad is not None):
                for key in self.codes:
                    if key in ep.open:
                        ep.cool(key, p.step, self.t.clear_points)

    def _bad_grad(self, p: Point, ep: Episodes, loss: float | None, grad: float) -> None:
        """A NaN/inf grad_norm: an fp16 skip when the loss is finite and the LR held, else a
        broken record (with a finite loss, one the Trainer's NaN filter hid)."""
        lr = p.lr
        if loss is not None and isfinite(loss) and lr is not None and self._held(lr):
            self._skip(p, ep, loss, grad, lr)
            return
        self.skip_run = 0
        if loss is not None and isfinite(loss):
            hint = _(
                "grad_norm is {grad} at step {step} while the logged loss is {loss}: the loss is NaN/inf but hidden "
                "by the Trainer's logging_nan_inf_filter"
            ).format(grad=fmt(grad), step=p.step, loss=fmt(loss))
        else:
            hint = _("grad_norm is {value} at step {step}").format(value=fmt(grad), step=p.step)
        self._broken(p, ep, GRAD_NORM, grad, hint)

    def _held(self, lr: float) -> bool:
        """The learning rate stayed where it was while it had been moving (the two LRs logged
        before this record differ)."""
        lrs = self.tl.lr.values
        if len(lrs) < 2:
            return False
        prev, prev2 = lrs[-1], lrs[-2]
        tol = LR_TOLERANCE * abs(prev)
        return abs(lr - prev) <= tol and abs(prev - prev2) > tol

    def _skip(self, p: Point, ep: Episodes, loss: float, grad: float, lr: float) -> None:
        t = self.t
        if self.skip_run == 0:
            self.skip_from = p.step
        self.skip_run += 1
        self.skipped += 1
        if self.skip_run >= t.fp16_skip_run:
            self._broken(
                p,
                ep,
                GRAD_NORM,
                grad,
                _(
                    "grad_norm non-finite on {count} records in a row (steps {first}-{last}) with the learning rate "
                    "held at {lr}: the fp16 loss scaler skips every step, nothing is trained"
                ).format(count=self.skip_run, first=self.skip_from, last=p.step, lr=fmt(lr)),
            )
            return
        n = self.skipped
        msg = ngettext(
            "{count} step skipped by the fp16 loss scaler, latest at step {step}: grad_norm {grad} with a finite "
            "loss {loss} and the learning rate held at {lr}",
            "{count} steps skipped by the fp16 loss scaler, latest at step {step}: grad_norm {grad} with a finite "
            "loss {loss} and the learning rate held at {lr}",
            n,
        ).format(count=n, step=p.step, grad=fmt(grad), loss=fmt(loss), lr=fmt(lr))
        ep.hot(_SKIP, p.step, GRAD_NORM, grad, msg, merge=self.ctx.recent(t.window_points))
        ep.open[_SKIP].finding.message = msg  # (the count grows while the episode holds)
        p.broken = True  # (its loss is the overflowing batch's: no smoother takes it)
        self.tl.gap()

    def _masked(self) -> bool:
        # (a cross-entropy only: a DPO loss rounds to 0 on a batch of wide margins, an RL loss
        # crosses 0 on its way negative)
        return tail_median(self.h.values, self.t.smooth_points) > _ZERO_LOSS_PRIOR

    def _broken(self, p: Point, ep: Episodes, name: str, v: float, hint: str) -> None:
        ep.hot(_KEY, p.step, name, v, hint)
        p.broken = True
        self.tl.gap()

    def quiet_block(self, c: Cols, ep: Episodes) -> bool:
        # (every record of a clean stretch goes to the cooling branch of observe)
        return _clean(c, 0, len(c.steps), self.ctx.objective.cross_entropy)  # (a 0 loss may be a masked NaN)

    def quiet(self, c: Cols, i: int, j: int, ep: Episodes) -> int:
        return j - i if _clean(c, i, j, self.ctx.objective.cross_entropy) else 0

    def absorb(self, c: Cols, i: int, j: int, ep: Episodes) -> None:
        self.skip_run = 0
        if ep.open and (c.loss is not None or c.grad is not None):
            for key in self.codes:
                if key in ep.open:
                    ep.cool_run(key, c.steps[i:j], self.t.clear_points)


def _clean(c: Cols, i: int, j: int, zero: bool) -> bool:
    """No NaN or infinity in records ``i..j-1``, and (``zero``) no loss of exactly 0 without a
    grad_norm."""
    whole = i == 0 and j == len(c.steps)  # (no copy of the columns)
    for col in (c.loss, c.grad, c.lr, c.acc, c.ent):
        if col is not None and not isfinite(sum(col if whole else col[i:j])):
            return False
    lc = c.loss
    return not (zero and lc is not None and c.grad is None and 0.0 in (lc if whole else lc[i:j]))
