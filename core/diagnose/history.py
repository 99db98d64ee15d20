"""What the rules look back on: the train timeline with its per-metric histories, and the evals.

Memory is bounded whatever the run's length. The timeline holds at most ``cap`` train records:
when it is full, the oldest half is dropped in one O(cap) trim (amortised O(1) a record). What a
resume may need from the dropped half was marked beforehand, when the half was complete: the
rules' states then, the timeline's counts and the last losses (``Mark``). So a resume within the
kept records ends exactly as without the cap, and one further back starts from the mark before
its step. The evals are kept the same way (at most ``cap`` of them), with the best eval kept
aside when it is trimmed (``EvalMark``).
"""

from __future__ import annotations

import itertools
import math
import operator
from array import array
from bisect import bisect_left, bisect_right
from dataclasses import dataclass

from .stats import median

NEVER = -(1 << 62)
MAX_MARKS = 32  # trim summaries kept for resumes past the kept history (thinned beyond this)


class Hist:
    """The finite values of one train metric on the kept part of the current timeline.

    ``values[j]`` belongs to the j-th kept train record that carried the metric; the records that
    did not (rare: a NaN record, a metric logged only sometimes) are listed in ``gaps``, so the
    common record costs one append and no step bookkeeping. ``off`` counts the values trimmed
    from the front: ``off + len(values)`` values were logged in all.
    """

    __slots__ = ("gaps", "off", "timeline", "values")

    def __init__(self, timeline: array[int]) -> None:
        self.timeline = timeline  # the steps of every kept train record
        self.values: array[float] = array("d")
        self.gaps: array[int] = array("q")  # indexes in ``timeline`` of records without a value, ascending
        self.off = 0  # values trimmed from the front

    def __len__(self) -> int:
        return len(self.values)

    @property
    def total(self) -> int:
        """Values logged on the current timeline, the trimmed ones included."""
        return self.off + len(self.values)

    def step(self, j: int) -> int:
        """The step of ``values[j]``."""
        gaps = self.gaps
        r = j
        while True:  # the j-th timeline index that is not a gap: r = j + #gaps <= r
            nxt = j + bisect_right(gaps, r)
            if nxt == r:
                return self.timeline[r]
            r = nxt

    def dropped(self, records: int) -> int:
        """How many values the first ``records`` records of the timeline carried."""
        return records - bisect_left(self.gaps, records)

    def trim(self, records: int) -> None:
        """Forget what the first ``records`` records carried (the timeline drops them too)."""
        gaps = self.gaps
        g = bisect_left(gaps, records)
        k = records - g
        del self.values[:k]
        self.gaps = array("q", map(operator.sub, gaps[g:], itertools.repeat(records)))
        self.off += k

    def cut(self, records: int) -> None:
        """Keep what the first ``records`` records of the timeline carried."""
        gaps = self.gaps
        del gaps[bisect_left(gaps, records) :]
        del self.values[records - len(gaps) :]

    def tail(self, n: int) -> list[float]:
        return self.values[-n:].tolist() if n > 0 else []

    def last(self) -> float | None:
        return self.values[-1] if self.values else None


@dataclass(frozen=True)
class RuleState:
    """A rule's state, frozen: every attribute of the rule by name (containers as tuples)."""

    rule: str
    fields: tuple[tuple[str, object], ...]

    def get(self, name: str) -> object:
        """The field ``name``; ``"a.b"`` is field ``b`` of the structure in field ``a``."""
        fields: tuple[tuple[str, object], ...] = self.fields
        v: object = None
        for part in name.split("."):
            found = [x for k, x in fields if k == part]
            if not found:
                raise KeyError(name)
            v = found[0]
            if isinstance(v, tuple) and len(v) == 2 and isinstance(v[0], str) and isinstance(v[1], tuple):
                fields = v[1]  # a frozen structure: (its type's name, its fields)
        return v

    def num(self, name: str) -> float:
        v = self.get(name)
        if v == "nan":
            return math.nan
        assert isinstance(v, (int, float))
        return v

    def integer(self, name: str) -> int:
        v = self.get(name)
        assert isinstance(v, int)
        return v


@dataclass(slots=True, frozen=True)
class Mark:
    """The state after the first records of the timeline, taken when they were complete and kept
    when a trim drops them: what a resume to a step after ``step`` starts from (the kept records
    are replayed on top of it)."""

    step: int  # the last marked record's step (NEVER for the start of the run)
    records: int  # train records up to it, the ones trimmed before included
    offs: tuple[int, ...]  # values of each Hist in them (in Timeline.hists order)
    loss_tail: tuple[float, ...]  # their last few losses (a window's worth: medians that straddle the mark)
    states: tuple[RuleState, ...]  # every train rule's state after them (in the diagnoser's rule order)


class Timeline:
    """The steps of the kept train records and one ``Hist`` per metric the rules read.

    At ``cap / 2`` kept records the diagnoser marks its state (``snap``); at ``cap`` it drops the
    marked half (``trim``) and marks again. ``due`` is the kept count at which that is next due.
    """

    __slots__ = (
        "acc",
        "cap",
        "due",
        "early_n",
        "early_points",
        "ent",
        "grad",
        "hists",
        "loss",
        "lr",
        "marks",
        "off",
        "snap",
        "steps",
        "tail_len",
    )

    def __init__(self, cap: int, early_points: int, tail_len: int) -> None:
        self.cap = cap
        self.due = cap // 2  # marking or trimming runs when a record arrives with this many kept
        self.snap: Mark | None = None  # the state after the first cap/2 kept records
        self.steps: array[int] = array("q")  # every kept train step, NaN records included
        self.off = 0  # train records trimmed from the front
        self.early_points = early_points
        self.early_n = early_points  # early_points - off: the kept records of early training
        self.tail_len = tail_len  # losses a mark keeps (medians that straddle it)
        self.loss = Hist(self.steps)
        self.grad = Hist(self.steps)
        self.lr = Hist(self.steps)
        self.acc = Hist(self.steps)
        self.ent = Hist(self.steps)
        self.hists = (self.loss, self.grad, self.lr, self.acc, self.ent)
        self.marks: list[Mark] = []  # what every trim dropped; the first is the start of the run

    def start(self, states: tuple[RuleState, ...]) -> None:
        """The first mark: the start of the run, with the rules' initial states."""
        self.marks = [Mark(NEVER, 0, (0,) * len(self.hists), (), states)]

    def gap(self) -> None:
        """The newest record carries no usable value of any metric (a broken record)."""
        r = len(self.steps) - 1
        for h in self.hists:
            h.gaps.append(r)

    def mark(self, states: tuple[RuleState, ...]) -> Mark:
        """The state after every record kept so far."""
        T = self.tail_len
        return Mark(
            self.steps[-1],
            self.off + len(self.steps),
            tuple(h.total for h in self.hists),
            tuple((array("d", self.marks[-1].loss_tail) + self.loss.values[-T:])[-T:]),
            states,
        )

    def trim(self, mark: Mark) -> tuple[int, ...]:
        """Drop the records ``mark`` summed up (the oldest half); returns how many values of each
        Hist went, for the indexes that point into them."""
        d = mark.records - self.off
        ks = tuple(off - h.off for h, off in zip(self.hists, mark.offs))
        marks = self.marks
        marks.append(mark)
        if len(marks) > MAX_MARKS:
            del marks[1:-1:2]  # coarser for resumes far back; the start and the newest stay
        del self.steps[:d]
        for h in self.hists:
            h.trim(d)
        self.off += d
        self.early_n = self.early_points - self.off
        return ks

    def rewind(self, step: int) -> Mark:
        """Steps went back to ``step`` (a resume): cut the records at ``step`` or later, back to
        the latest mark before it when the kept records do not reach that far. Returns that mark."""
        marks = self.marks
        kept = bisect_left(self.steps, step)
        if marks[-1].step >= step:  # back past the kept history (kept == 0)
            while marks[-1].step >= step:
                marks.pop()  # the first mark, at NEVER, stays
            base = marks[-1]
            self.off = base.records
            for h, off in zip(self.hists, base.offs):
                h.off = off
        self.early_n = self.early_points - self.off
        if kept < self.cap // 2:  # the marked records are cut: mark again at cap / 2
            self.snap = None
            self.due = self.cap // 2
        del self.steps[kept:]
        for h in self.hists:
            h.cut(kept)
        return marks[-1]


@dataclass(slots=True)
class Eval:
    step: int
    loss: float
    acc: float | None
    entropy: float | None
    speed: float | None  # eval samples/s (or 1/runtime)
    train_loss: float | None  # smoothed train loss when this eval was logged (None in early training)
    train_raw: float | None  # the same, early training included (for the train trend)
    train_entropy: float | None
    ratio: float | None  # eval_loss / train_loss
    smooth: float = math.nan  # median of the last few eval losses, this one included


@dataclass(slots=True, frozen=True)
class EvalMark:
    """The same for a trim of the evals: the best eval among the dropped ones."""

    step: int  # the last dropped eval's step (NEVER for the start of the run)
    evals: int  # evals dropped in all
    best: int  # index (counting the dropped evals) of the lowest smoothed eval_loss among them; -1: none
    best_eval: Eval | None


class EvalLog:
    """The newest evals (at most ``cap``; the oldest half goes when it is full). Eval indexes
    count the trimmed evals too: ``evals[i - off]`` is eval i. ``best`` is the index of the eval
    with the lowest smoothed loss and ``best_e`` that eval, kept when it is trimmed."""

    __slots__ = ("best", "best_e", "cap", "evals", "marks", "off")

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.evals: list[Eval] = []
        self.off = 0  # evals trimmed from the front
        self.marks: list[EvalMark] = [EvalMark(NEVER, 0, -1, None)]
        self.best = -1
        self.best_e: Eval | None = None

    @property
    def total(self) -> int:
        return self.off + len(self.evals)

    def kept(self) -> list[Eval]:
        """The evals kept (a bound method, not a lambda, to hand to a rule: the diagnoser goes
        to a helper process and back by pickle)."""
        return self.evals

    def stale(self, step: int) -> bool:
        """An eval at ``step`` comes at or before one already taken (re-logged after a resume)."""
        evals = self.evals
        return bool(evals and evals[-1].step >= step) or self.marks[-1].step >= step

    def cut(self, step: int) -> bool:
        """Forget the evals at ``step`` or later (re-logged after a resume, or cut by one);
        whether there were any."""
        evals = self.evals
        if not self.stale(step):
            return False
        while evals and evals[-1].step >= step:
            evals.pop()
        marks = self.marks
        while marks[-1].step >= step:  # back past the kept evals
            marks.pop()  # the first mark, at NEVER, stays
            self.off = marks[-1].evals
        # the lowest smoothed eval_loss: the dropped evals' best, or a kept one (the first lowest)
        base = marks[-1]
        best, be = base.best, base.best_eval
        for i, e in enumerate(evals):
            if be is None or e.smooth < be.smooth:
                best, be = self.off + i, e
        self.best, self.best_e = best, be
        return True

    def append(self, e: Eval, smooth_span: int) -> bool:
        """Take ``e`` (its ``smooth`` is set here); returns whether it is the new best."""
        evals = self.evals
        evals.append(e)
        if len(evals) > self.cap:
            self._trim()
        e.smooth = median([x.loss for x in evals[-smooth_span:]])
        best = self.best_e
        if best is None or e.smooth < best.smooth:
            self.best = self.off + len(evals) - 1
            self.best_e = e
            return True
        return False

    def _trim(self) -> None:
        """Drop the oldest half (summed up in an ``EvalMark``). O(cap), once per cap/2 evals."""
        evals = self.evals
        d = len(evals) // 2
        prev = self.marks[-1]
        best, be = prev.best, prev.best_eval
        for i, e in enumerate(evals[:d]):
            if be is None or e.smooth < be.smooth:
                best, be = self.off + i, e
        marks = self.marks
        marks.append(EvalMark(evals[d - 1].step, self.off + d, best, be))
        if len(marks) > MAX_MARKS:
            del marks[1:-1:2]
        del evals[:d]
        self.off += d
