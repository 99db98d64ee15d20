"""training_unstable: no net progress over a long window while the loss swings widely and the
gradients or the evals swing with it.

A run at a far too high learning rate does not blow up: its loss bounces between two levels (3.2
to 4.4) for hundreds of steps, its grad_norm spans an order of magnitude (0.7 to 9) and its eval
accuracy jumps up and down (0.26, 0.10, 0.26, 0.12). Each piece alone is weak evidence (a noisy
healthy loss spreads 20% too, an eval can dip once); together, over a window where the loss made
no progress, they are one finding, named once with its numbers. Where there are evals enough to
judge, they must swing: gradients alone swing in healthy preference and RL runs.

The check is a trend check (``trend._Trend``): on a stride, over a window twice the plateau's, it
opens after two hot checks in a row once the window slid by half its length. Its medians and
quantiles look at an evenly strided sample of at most ``_SAMPLE`` points, so a check is O(1).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

from sfttop.core.diagnose.episodes import Code, Episodes
from sfttop.core.diagnose.history import Eval
from sfttop.core.diagnose.stats import median, sample
from sfttop.core.i18n import _
from sfttop.core.metrics import LOSS
from sfttop.core.textfmt import fmt

from .base import _SAMPLE, Context, Trend

_KEY = Code.TRAINING_UNSTABLE
_GRAD_SPREAD = 4.0  # grad_norm's 90th percentile this many times its 10th: an order-of-magnitude span


def _quantile(s: Sequence[float], q: float) -> float:
    """The ``q`` quantile of the sorted ``s`` (nearest rank)."""
    return s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))]


def _no_evals() -> list[Eval]:
    return []


class Unstable(Trend):
    __slots__ = ("evals",)
    links = ("evals",)
    code = _KEY
    codes = (_KEY,)
    metric = LOSS
    _which = 0

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.h = ctx.tl.loss
        # the evals so far (the diagnoser sets it: the eval rules keep them)
        self.evals: Callable[[], list[Eval]] = _no_evals

    def _check(self, step: int, early: bool, ep: Episodes) -> None:
        t = self.t
        h = self.h
        vals = h.values
        n = len(vals)
        w = self._due(2)
        if not w:
            return
        a = n - w
        k = max(3, w // 3)
        first = median(sample(vals, a, a + k, _SAMPLE))
        last = median(sample(vals, n - k, n, _SAMPLE))
        progress = (first - last) / abs(first) if first > 0 else 1.0  # (a loss <= 0: not judged)
        win = sorted(sample(vals, a, n, _SAMPLE))
        lo, hi, mid = _quantile(win, 0.1), _quantile(win, 0.9), _quantile(win, 0.5)
        spread = (hi - lo) / mid if mid > 0 else 0.0
        flat = progress < t.unstable_min_progress
        swings = spread >= t.unstable_spread and hi - lo >= t.oscillation_min_jump
        start = h.step(a)
        why = ""
        if flat and swings and not early:  # (the gradients and evals only matter then: most checks stop here)
            # (evals are sparse: they are looked at over twice the window). With evals enough to
            # judge, they must swing too: steady evals say the model is fine, and gradients alone
            # swing in healthy preference and RL runs.
            evals, judged = self._evals(h.step(max(0, n - 2 * w)))
            grads = self._grads(w)
            why = (_(", ").join(filter(None, (grads, evals))) if evals else "") if judged else grads
        hot = bool(why)
        clear = not flat or spread < 0.75 * t.unstable_spread
        lr = self.tl.lr.last()
        self._verdict(
            ep,
            hot,
            clear,
            w,
            step,
            mid,
            lambda: (
                _(
                    "training is unstable over steps {start}-{step}: the loss swings {lo}-{hi} (10th-90th "
                    "percentile) with no net progress ({first} -> {last}), {why}"
                ).format(start=start, step=step, lo=fmt(lo), hi=fmt(hi), first=fmt(first), last=fmt(last), why=why)
                + (_(", at learning_rate {lr}").format(lr=fmt(lr)) if lr is not None else "")
            ),
        )

    def _grads(self, w: int) -> str:
        """The last ``w`` grad norms (logged with the losses: the same window) spanning an order
        of magnitude ("" when not)."""
        g = self.tl.grad.values
        if len(g) < 10:
            return ""
        s = sorted(sample(g, max(0, len(g) - w), len(g), _SAMPLE))
        lo, hi = _quantile(s, 0.1), _quantile(s, 0.9)
        if lo > 0 and hi >= _GRAD_SPREAD * lo and hi >= self.t.grad_spike_min:
            return f"grad_norm {fmt(lo)}-{fmt(hi)}"
        return ""

    def _evals(self, start: int) -> tuple[str, bool]:
        """Eval accuracy (or, without one, eval loss) going down and up again by more than
        ``accuracy_drop`` (10% of the loss) at least twice since ``start`` ("" when not), and
        whether there were evals enough (3) to tell."""
        t = self.t
        evs = [e for e in self.evals()[-_SAMPLE:] if e.step >= start]
        if len(evs) < 3:
            return "", False
        accs = [e.acc for e in evs if e.acc is not None]
        if len(accs) >= 3:
            xs, name, tol = accs, _("eval accuracy"), t.accuracy_drop
        else:
            xs, name = [e.loss for e in evs], "eval_loss"
            tol = 0.1 * median(xs)
        turns = 0
        d_prev = 0.0
        for x0, x1 in itertools.pairwise(xs):
            d = x1 - x0
            if abs(d) < tol:
                continue
            if d_prev and (d > 0) != (d_prev > 0):
                turns += 1
            d_prev = d
        if turns >= 2:
            return f"{name} " + " -> ".join(fmt(x) for x in xs[-6:]), True
        return "", True
