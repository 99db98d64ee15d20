"""The checklist's judges: each says what one window's own data shows for one item.

A judge takes a ``WindowData`` and returns ``(status, detail)``; which item it serves, and which
findings are merged into its verdict, is said once, in ``items.py``. Every number a judge
compares with comes from ``Thresholds`` or ``metrics.NORMAL_RANGES``.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right

from sfttop.core.diagnose import fmt, median
from sfttop.core.i18n import _
from sfttop.core.metrics import ENTROPY, EVAL_LOSS, EVAL_TOKEN_ACC, GRAD_NORM, LOSS, LR, NORMAL_RANGES
from sfttop.core.query import lr_direction, value_at

from .context import MAX_SAMPLE, WindowData, finite_only, last_finite, window_values
from .windows import FAIL, PASS, PENDING, WARN, Verdict

# -- every 100 steps ---------------------------------------------------------------------------


def loss_falling(w: WindowData) -> Verdict:
    ctx, a, b = w.ctx, w.a, w.b
    raw = ctx.values(LOSS, a, b, finite=False)
    vals = finite_only(raw)
    if len(raw) > len(vals):
        return FAIL, _("{count} non-finite loss values").format(count=len(raw) - len(vals))
    if len(vals) < 2:
        return PENDING, _("not enough loss points yet")
    size = b - a + 1
    nprev, m0 = ctx.stat(LOSS, max(0, a - size), a - 1)
    if nprev >= 2:
        m1 = ctx.stat(LOSS, a, b)[1]
        what = _("the previous window")
    else:
        half = len(vals) // 2
        m0, m1 = median(vals[:half]), median(vals[half:])
        what = _("the first half")
    change = (m1 - m0) / abs(m0) if m0 else 0.0
    detail = _("median {m1} vs {m0} in {what} ({change:+.1f}%)").format(m1=fmt(m1), m0=fmt(m0), what=what, change=change * 100)
    if change > w.t.loss_rise_fail:
        return FAIL, _("loss rising: {detail}").format(detail=detail)
    if change > w.t.loss_rise_warn:
        return WARN, _("loss rising: {detail}").format(detail=detail)
    return PASS, detail


def grad_in_range(w: WindowData) -> Verdict:
    ctx, a, b = w.ctx, w.a, w.b
    t = ctx.t
    vals = ctx.values(GRAD_NORM, a, b)
    if not vals:
        return PENDING, _("no grad_norm logged in this window")
    med, hi = median(vals), max(vals)
    detail = _("median {med}, max {hi} (range {low}-{grad_norm_warn})").format(med=fmt(med), hi=fmt(hi), low=fmt(NORMAL_RANGES[GRAD_NORM][0]), grad_norm_warn=fmt(t.grad_norm_warn))
    if med > t.grad_norm_critical:
        return FAIL, detail
    if med > t.grad_norm_warn or med < t.grad_norm_vanishing:
        return WARN, detail
    return PASS, detail


def lr_decaying(w: WindowData) -> Verdict:
    ctx, a, b = w.ctx, w.a, w.b
    vals = ctx.values(LR, a, b)
    if not vals:
        return PENDING, _("no learning rate logged in this window")
    v0, v1 = vals[0], vals[-1]
    direction = lr_direction(v0, v1)
    if direction > 0:
        shape = _("warming up") if w.first or ctx.diag.lr_peak() is None or v1 <= (ctx.diag.lr_peak() or 0) else _("rising")
        return PASS, _("{shape}: {v0} -> {v1}").format(shape=shape, v0=fmt(v0), v1=fmt(v1))
    if direction < 0:
        return PASS, _("decaying: {v0} -> {v1}").format(v0=fmt(v0), v1=fmt(v1))
    return PASS, _("constant at {v1}").format(v1=fmt(v1))


def no_nonfinite(w: WindowData) -> Verdict:
    ctx, a, b = w.ctx, w.a, w.b
    seen = 0
    bad: list[str] = []
    for m in (LOSS, GRAD_NORM, EVAL_LOSS):
        raw = ctx.values(m, a, b, finite=False)
        seen += len(raw)
        nb = len(raw) - len(finite_only(raw))
        if nb:
            bad.append(f"{m} x{nb}")
    if bad:
        return FAIL, _("non-finite: {values}").format(values=", ".join(bad))
    if not seen:
        return PENDING, _("no loss or grad_norm in this window")
    return PASS, _("all loss and grad_norm values finite")


# -- every 1000 steps --------------------------------------------------------------------------


def loss_gap(w: WindowData) -> Verdict:
    ctx, a, b = w.ctx, w.a, w.b
    t = ctx.t
    ev = ctx.evals()
    if not ev.count(a, b):
        return PENDING, _("no eval in this window")
    j = ev.upto(b) - 1
    step, el = ev.steps[j], ev.values[j]
    tl = ctx.train_at(LOSS, step)
    if tl is None or tl <= 0:
        return PENDING, _("no train loss to compare with")
    gap = (el - tl) / tl
    detail = _("eval {el} vs train {tl} at step {step} ({value:+.0f}%)").format(el=fmt(el), tl=fmt(tl), step=step, value=gap * 100)
    if el / tl > t.loss_gap_ratio and el - tl >= t.loss_gap_min:
        return FAIL, detail
    if gap > t.loss_gap_warn:
        return WARN, detail
    return PASS, detail


def _nan_evals(w: WindowData, metric: str, status: str) -> Verdict | None:
    """``status`` when the window's evals of ``metric`` include NaN/inf or masked ones (a NaN
    eval is an eval: never "no eval", and never a PASS such as a rising accuracy of 0 -> 0)."""
    raw = w.ctx.values(metric, w.a, w.b, finite=False)
    bad = len(raw) - len(finite_only(raw))
    return (status, _("{bad} of {raw} evals in this window are NaN/inf").format(bad=bad, raw=len(raw))) if bad else None


def eval_acc_rising(w: WindowData) -> Verdict:
    ctx, a, b = w.ctx, w.a, w.b
    nan = _nan_evals(w, EVAL_TOKEN_ACC, FAIL)
    if nan is not None:
        return nan
    ev = ctx.eval_acc()
    if not ev.count(a, b):
        return PENDING, _("no eval accuracy in this window")
    j = ev.upto(b) - 1  # the window's latest eval accuracy, and the one before it
    s1, v1 = ev.steps[j], ev.values[j]
    if j < 1:
        return PENDING, _("one eval so far ({v1})").format(v1=fmt(v1))
    s0, v0 = ev.steps[j - 1], ev.values[j - 1]
    detail = _("{v0} (step {s0}) -> {v1} (step {s1})").format(v0=fmt(v0), s0=s0, v1=fmt(v1), s1=s1)
    if v1 < v0 - ctx.t.accuracy_drop:
        return FAIL, _("falling: {detail}").format(detail=detail)
    if v1 < v0 - ctx.t.eval_acc_dip:
        return WARN, _("falling: {detail}").format(detail=detail)
    return PASS, detail


def no_overfitting(w: WindowData) -> Verdict:
    ctx, a, b = w.ctx, w.a, w.b
    nan = _nan_evals(w, EVAL_LOSS, PENDING)  # (overfitting cannot be told from NaN evals)
    if nan is not None:
        return nan
    ev = ctx.evals()
    if not ev.upto(b):
        return PENDING, _("no eval yet")
    if not ev.count(a, b):
        return PENDING, _("no eval in this window")
    return PASS, _("eval_loss not rising against train loss")


def entropy_stable(w: WindowData) -> Verdict:
    ctx, a, b = w.ctx, w.a, w.b
    raw = ctx.values(ENTROPY, a, b, finite=False)
    bad = len(raw) - len(finite_only(raw))
    if bad:
        # NaN logits: the entropy of this window says nothing stable (never a PASS)
        return FAIL, _("{bad} of {raw} entropy values are NaN/inf").format(bad=bad, raw=len(raw))
    n, m1 = ctx.stat(ENTROPY, a, b)
    if n < 2:
        return PENDING, _("not enough entropy points in this window")
    if m1 < w.t.entropy_collapse:
        return FAIL, _("entropy collapsed to {m1} nats").format(m1=fmt(m1))
    size = b - a + 1
    nprev, m0 = ctx.stat(ENTROPY, max(0, a - size), a - 1)
    if nprev < 2:
        return PASS, _("median {m1}").format(m1=fmt(m1))
    change = (m1 - m0) / m0 if m0 else 0.0
    detail = _("median {m1} vs {m0} in the previous window ({value:+.0f}%)").format(m1=fmt(m1), m0=fmt(m0), value=change * 100)
    if abs(change) > w.t.entropy_change:
        return WARN, detail
    return PASS, detail


# -- every epoch -------------------------------------------------------------------------------


def trend_healthy(w: WindowData) -> Verdict:
    ctx, a, b = w.ctx, w.a, w.b
    s = ctx.data.get(LOSS)
    if s is None:
        return PENDING, _("not enough loss points yet")
    i, j = bisect_left(s.steps, a), bisect_right(s.steps, b)
    vals = window_values(s, i, j, True)
    if len(vals) < 2:
        return PENDING, _("not enough loss points yet")
    m1 = median(vals)
    # the previous epoch: as many values as this one's, just before it (a sampled window: the
    # same number of points before it, sampled alike)
    prev = last_finite(s, i, len(vals)) if j - i <= MAX_SAMPLE else window_values(s, max(0, i - (j - i)), i, True)
    if prev:
        m0 = median(prev)
        change = (m1 - m0) / m0 if m0 else 0.0
        detail = _("loss median {m1} vs {m0} in the previous epoch ({value:+.0f}%)").format(m1=fmt(m1), m0=fmt(m0), value=change * 100)
        if change > w.t.epoch_loss_rise:
            return WARN, detail
        return PASS, detail
    half = len(vals) // 2
    m0 = median(vals[:half])
    return (PASS if m1 <= m0 else WARN), _("loss median {m0} -> {m1} within the epoch").format(m0=fmt(m0), m1=fmt(m1))


def best_checkpoint(w: WindowData) -> Verdict:
    ctx, a, b = w.ctx, w.a, w.b
    ev = ctx.evals()
    n = ev.upto(b)
    if not n:
        return PENDING, _("no eval yet")
    i = ev.best[n - 1]
    step, loss, acc = ev.steps[i], ev.values[i], value_at(ctx.data.get(EVAL_TOKEN_ACC), ev.steps[i])
    acc_txt = _(", eval accuracy {acc}").format(acc=fmt(acc)) if acc is not None else ""
    detail = _("step {step} (eval_loss {loss}{acc_txt})").format(step=step, loss=fmt(loss), acc_txt=acc_txt)
    if step < a and ev.count(a, b):
        return WARN, _("{detail}: no better eval in this epoch").format(detail=detail)
    return PASS, detail


def early_stop(w: WindowData) -> Verdict:
    ctx = w.ctx
    ev = ctx.evals()
    n = ev.upto(w.b)
    if not n:
        return PENDING, _("no eval yet")
    best_i = ev.low[n - 1]
    since = n - 1 - best_i
    if since >= ctx.t.overfit_patience:
        return (
            WARN,
            _("eval_loss has not improved for {since} evals (best {best} at step {step})").format(since=since, best=fmt(ev.values[best_i]), step=ev.steps[best_i]),
        )
    return (
        PASS,
        _("not needed: eval_loss still improving") if since == 0 else _("not yet: {since} eval(s) without a new best").format(since=since),
    )
