"""accuracy_drop on train records: the rolling median of token accuracy fell more than
``accuracy_drop`` below its best (not judged in early training)."""

from __future__ import annotations

import itertools
import math
import operator
from array import array
from bisect import bisect_left, bisect_right, insort

from sfttop.core.diagnose.episodes import Code, Episodes
from sfttop.core.diagnose.history import Mark, RuleState
from sfttop.core.diagnose.stats import RollingMedian
from sfttop.core.i18n import _
from sfttop.core.metrics import TOKEN_ACC
from sfttop.core.textfmt import fmt

from .base import Cols, Context, Point, TrainRule, acc_span

_CODE = Code.ACCURACY_DROP
KEY = "accuracy_drop:train"  # train and eval accuracy drops are separate episodes
isfinite = math.isfinite


class Accuracy(TrainRule):
    __slots__ = ("best", "win")
    codes = (_CODE,)
    quiet_by_reach = True  # (a drop inside a stretch is found by absorb)

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.h = ctx.tl.acc
        self.win = RollingMedian(acc_span(ctx.t))  # the last span token accuracies, sorted
        self.best = -math.inf  # best smoothed train accuracy

    def observe(self, p: Point, ep: Episodes) -> None:
        acc = p.acc
        h = self.h
        if acc is None or not isfinite(acc):
            h.gaps.append(p.row)
            return
        av = h.values
        av.append(acc)
        rm = self.win
        rm.push(av)
        if len(av) < rm.size:
            return
        win = rm.win
        k = rm.size >> 1
        now = win[k] if rm.size & 1 else 0.5 * (win[k - 1] + win[k])
        if not p.early and now > self.best:
            self.best = now
        if not p.early and self.best - now > self.t.accuracy_drop:
            self._drop(p.step, now, ep)
        elif KEY in ep.open:
            ep.cool(KEY, p.step, self.t.clear_points)

    def _drop(self, step: int, now: float, ep: Episodes) -> None:
        if KEY in ep.open:
            ep.hold(KEY)
            return
        best = self.best
        ep.hot(
            _CODE,
            step,
            TOKEN_ACC,
            now,
            _("token accuracy {now} at step {step} is {value} below its best {best}").format(now=fmt(now), step=step, value=fmt(best - now), best=fmt(best)),
            KEY,
        )

    # ---------------------------------------------------------------------------- bulk
    def reach(self, c: Cols, i: int, j: int) -> int:
        if c.acc is None:
            return j - i
        if len(self.h.values) < self.win.size:
            return 0
        # a stretch is all early training (a share of max_steps) or none of it
        ms = self.ctx.max_steps
        if ms and c.steps[i] <= self.t.early_fraction * ms:
            return bisect_right(c.steps, self.t.early_fraction * ms, i, j) - i
        return j - i

    def quiet(self, c: Cols, i: int, j: int, ep: Episodes) -> int:
        # (a drop inside the stretch is found by absorb, which walks the few windows that may
        # hold one: this rule never holds a stretch back)
        return j - i

    def absorb(self, c: Cols, i: int, j: int, ep: Episodes) -> None:
        h = self.h
        if c.acc is None:
            n = len(self.tl.steps)
            h.gaps.extend(range(n - (j - i), n))
            return
        ms = self.ctx.max_steps
        seg = c.acc[i:j]
        if ms and c.steps[i] <= self.t.early_fraction * ms:
            # early training: no best and no drop yet, only the window moves
            h.values.extend(seg)
        else:
            size = self.win.size
            k = size >> 1
            # Every window median lies between the union's order statistics: when none can beat
            # the best nor fall a drop below it, only the window moves.
            u = sorted(h.values[-size:] + seg)
            hi, lo = u[-(size - k)], u[k - 1]
            drop = self.t.accuracy_drop
            if hi <= self.best and self.best - lo <= drop:
                h.values.extend(seg)
            elif max(self.best, hi) - lo <= drop:
                self._rise(seg)
            else:
                self._rows(c, i, j, ep)
                return
        self.win.extend(h.values)
        if KEY in ep.open:
            ep.cool_run(KEY, c.steps[i:j], self.t.clear_points)

    def _rise(self, seg: array[float]) -> None:
        """No drop, but maybe a new best. A window's median is above the best only when
        ``size - size // 2`` of its values are (the upper median is), so only the windows with that
        many (counted in C) are sorted, not every one."""
        av = self.h.values
        size = self.win.size
        k = size >> 1
        m = len(seg)
        best = self.best
        n0 = len(av)
        av.extend(seg)
        ext = av[n0 - size + 1 :]  # window r: ext[r : r + size]
        pre = list(itertools.accumulate(map(operator.gt, ext, itertools.repeat(best)), initial=0))
        above = map(operator.sub, pre[size:], pre[:m])
        for r in itertools.compress(range(m), map(operator.ge, above, itertools.repeat(size - k))):
            w = sorted(ext[r : r + size])
            now = w[k] if size & 1 else 0.5 * (w[k - 1] + w[k])
            if now > best:
                best = now
        self.best = best

    def _rows(self, c: Cols, i: int, j: int, ep: Episodes) -> None:
        """Near a drop: window by window, as ``observe`` (no early training here)."""
        assert c.acc is not None
        av = self.h.values
        win = self.win.win
        size = self.win.size
        k = size >> 1
        odd = size & 1
        best = self.best
        drop = self.t.accuracy_drop
        for r in range(i, j):
            a = c.acc[r]
            av.append(a)
            insort(win, a)
            del win[bisect_left(win, av[-1 - size])]
            now = win[k] if odd else 0.5 * (win[k - 1] + win[k])
            if now > best:
                best = now
            if best - now > drop:
                self.best = best
                self._drop(c.steps[r], now, ep)
            elif KEY in ep.open:
                ep.cool(KEY, c.steps[r], self.t.clear_points)
        self.best = best

    # ---------------------------------------------------------------------------- history
    def restore(self, state: RuleState, mark: Mark) -> None:
        self.win.extend(self.h.values)

    def trimmed(self, dropped: tuple[int, ...]) -> None:
        self.win.extend(self.h.values)
