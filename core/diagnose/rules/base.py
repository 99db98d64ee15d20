"""The one interface every train rule implements, and what the rules share.

A rule owns its state and its findings' codes. The diagnoser calls the same rule objects on both
of its paths:

- the record path: ``observe(p, ep)`` for each train record, in a fixed rule order (which is the
  order findings of one record are listed in);
- the bulk path, for a stretch of records ``i..j-1`` of a block's columns: each rule first says
  how far its own bookkeeping lets a stretch reach (``reach``: a check falling due, the end of
  early training), then proves that none of the stretch's values can open or close anything for
  it (``quiet``: 0 when it cannot, say while a window fills), next to its own firing condition
  in ``observe``. Only when every rule proved the
  stretch quiet does each ``absorb`` it, leaving exactly the state that ``observe`` row by row
  would leave (``tests/core/test_rules.py`` compares the two by ``state()``).

``state()`` is the rule's whole state, frozen, built from its ``__slots__`` (so a new attribute is
compared and marked without anyone listing it); ``restore`` rebuilds the rule after a resume from
its state in the latest trim mark plus the kept history, ``trimmed`` shifts its indexes when the
oldest half of the history goes.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from array import array
from collections import deque
from collections.abc import Callable
from typing import ClassVar, NamedTuple, Protocol

from sfttop.core.config import Thresholds
from sfttop.core.diagnose.episodes import Code, Episodes
from sfttop.core.diagnose.history import Hist, Mark, RuleState, Timeline
from sfttop.core.objective import Objective


class Context:
    """What every rule reads besides its own state: the thresholds, the timeline with the
    per-metric histories, the run's length once known and its objective."""

    __slots__ = ("max_steps", "objective", "t", "tl")

    def __init__(self, t: Thresholds, tl: Timeline, max_steps: int | None) -> None:
        self.t = t
        self.tl = tl
        self.max_steps = max_steps  # set when the caller learns it (banner, bar)
        self.objective = Objective.SFT  # until the run's keys say otherwise (the diagnoser's)

    def recent(self, points: int) -> int:
        """Steps spanned by the last ``points`` train records: an episode that closed within them
        and comes back continues (``Episodes.hot(merge=...)``) rather than opening anew."""
        s = self.tl.steps
        n = len(s)
        return s[-1] - s[max(0, n - 1 - points)] if n else 0

    def early(self, step: int) -> bool:
        """Early training: the first ``early_points`` records, or a share of ``max_steps``."""
        t, tl = self.t, self.tl
        if len(tl.steps) + tl.off <= t.early_points:
            return True
        return bool(self.max_steps) and step <= t.early_fraction * (self.max_steps or 0)


class Point:
    """One train record as the rules see it. The diagnoser reuses one instance for every record:
    a rule reads it during ``observe`` and never keeps it."""

    __slots__ = ("acc", "broken", "early", "ent", "grad", "loss", "lr", "row", "step")

    def __init__(self) -> None:
        self.step = 0
        self.row = 0  # the record's index in the timeline
        self.early = False
        self.broken = False  # a non-finite value: no other rule takes the record
        self.loss: float | None = None
        self.grad: float | None = None
        self.lr: float | None = None
        self.acc: float | None = None
        self.ent: float | None = None

    def fill(self, c: Cols, k: int, row: int, early: bool) -> Point:
        """Row ``k`` of ``c``."""
        self.step = c.steps[k]
        self.row = row
        self.early = early
        self.broken = False
        self.loss = c.loss[k] if c.loss is not None else None
        self.grad = c.grad[k] if c.grad is not None else None
        self.lr = c.lr[k] if c.lr is not None else None
        self.acc = c.acc[k] if c.acc is not None else None
        self.ent = c.ent[k] if c.ent is not None else None
        return self


class Cols(NamedTuple):
    """A block's steps and the columns the train rules read (None: not logged), in
    ``Timeline.hists`` order."""

    steps: array[int]
    loss: array[float] | None
    grad: array[float] | None
    lr: array[float] | None
    acc: array[float] | None
    ent: array[float] | None


class TrainRule(ABC):
    """A family of train-record rules. Subclasses list their state in ``__slots__``."""

    __slots__ = ("ctx", "h", "t", "tl")
    # attributes of a subclass that point elsewhere (other rules, caches): not state
    links: ClassVar[tuple[str, ...]] = ()
    codes: ClassVar[tuple[Code, ...]] = ()
    h: Hist  # the history of the metric the rule judges (set by the subclass)
    # Within its reach the rule opens and closes nothing whatever the values (``quiet`` is
    # ``j - i``): the diagnoser does not ask.
    quiet_by_reach: ClassVar[bool] = False
    # Within its reach the rule's state does not move either (``absorb`` does nothing): the
    # diagnoser does not call it.
    still_in_bulk: ClassVar[bool] = False
    # All ``absorb`` does is cool the rule's open episodes: with none open, the diagnoser does
    # not call it.
    cools_only: ClassVar[bool] = False

    def __init__(self, ctx: Context) -> None:
        # (the thresholds and the timeline are never replaced: held directly, one lookup less on
        # every call of the bulk path)
        self.ctx = ctx
        self.t = ctx.t
        self.tl = ctx.tl

    @abstractmethod
    def observe(self, p: Point, ep: Episodes) -> None:
        """Take one train record (the timeline already holds its step)."""

    def reach(self, c: Cols, i: int, j: int) -> int:
        """How many records from ``i`` (at most ``j - i``) the rule's own bookkeeping lets one
        stretch take: fewer when a check falls due inside, 0 when record ``i`` needs ``observe``."""
        return j - i

    def quiet(self, c: Cols, i: int, j: int, ep: Episodes) -> int:
        """How many of the records ``i..j-1`` provably open and close nothing of this rule and
        change no state in a way ``absorb`` does not reproduce (0: none proven). ``ep`` tells
        whether the rule's episodes are open (an open one may be held by less)."""
        return 0

    def quiet_block(self, c: Cols, ep: Episodes) -> bool:
        """Whether ``quiet`` would pass every stretch of the whole block ``c``: asked once a
        block, and when True ``quiet`` is not asked for its stretches (most blocks of a run hold
        no NaN and no negative loss; proving it per stretch cost a call each)."""
        return False

    def absorb(self, c: Cols, i: int, j: int, ep: Episodes) -> None:
        """Take records ``i..j-1``, which ``quiet`` cleared (the timeline already holds their
        steps): the state ``observe`` on each would leave. By default, that is what it does."""
        ctx = self.ctx
        row = len(ctx.tl.steps) - (j - i)
        p = Point()
        f = ctx.t.early_fraction * (ctx.max_steps or 0)
        for k in range(i, j):
            self.observe(p.fill(c, k, row, row < ctx.tl.early_n or (bool(ctx.max_steps) and c.steps[k] <= f)), ep)
            row += 1

    def state(self) -> RuleState:
        """Every attribute of the rule (its ``__slots__``; the context and ``links`` aside), frozen."""
        cls = type(self)
        names = _STATE_NAMES.get(cls)
        if names is None:
            skip = (*TrainRule.__slots__, *cls.links)
            found = {s for c in cls.__mro__ for s in getattr(c, "__slots__", ()) if s not in skip}
            names = _STATE_NAMES[cls] = tuple(sorted(found))
        return RuleState(cls.__name__, tuple((s, freeze(getattr(self, s))) for s in names))

    def restore(self, state: RuleState, mark: Mark) -> None:  # noqa: B027 (a hook: most rules keep their state)
        """After a resume: the timeline was cut back to ``mark`` plus the kept records before the
        resumed step; ``state`` is this rule's state when ``mark`` was taken."""

    def trimmed(self, dropped: tuple[int, ...]) -> None:  # noqa: B027 (a hook: most rules hold no index)
        """The oldest records went; ``dropped`` is how many values of each history (in
        ``Timeline.hists`` order) went with them."""


_STATE_NAMES: dict[type[TrainRule], tuple[str, ...]] = {}  # a rule class's state attributes, found once


def freeze(v: object) -> object:
    """``v`` as a comparable, immutable value (NaN compares equal to itself here)."""
    if isinstance(v, float):
        return "nan" if v != v else v
    if isinstance(v, array):
        return (v.typecode, v.tobytes())  # (bit for bit, in C: marks freeze windows of them)
    if isinstance(v, (list, tuple, deque)):
        try:
            return ("d", array("d", v).tobytes())  # numbers
        except TypeError:
            return tuple(freeze(x) for x in v)
    slots = getattr(type(v), "__slots__", None)
    if slots is not None and not isinstance(v, (str, bytes)):
        return (type(v).__name__, tuple((s, freeze(getattr(v, s))) for s in slots))
    return v


def acc_span(t: Thresholds) -> int:
    """Token accuracies in the rolling median the accuracy rules judge."""
    return max(t.smooth_points, t.window_points // 2)


class LossLevel(Protocol):
    """What the plateau rule reads from the loss rule: the best smoothed loss so far."""

    @property
    def loss_best(self) -> float: ...


class LrLevel(Protocol):
    """What the trend rules read from the learning-rate rule."""

    def ok_for_plateau(self) -> bool: ...


class LossTrend(Protocol):
    """What the vanishing-gradient rule reads from the plateau rule."""

    @property
    def improvement(self) -> float | None: ...


_CONFIRM = 2  # consecutive hot checks before it opens
# Values one trend median (or noise estimate) looks at. Up to this many points the statistics
# are exact; past it they use an evenly strided sample, so a check costs O(1) and not O(run
# length) (the medians of 500 noisy points are as good as of 50000).
_SAMPLE = 500


class Trend(TrainRule):
    """A check on a stride over one metric's history, with the votes of the last checks (the
    long-window rules: trend.py's plateau and slow accuracy, unstable.py)."""

    __slots__ = ("next", "since", "votes")
    quiet_by_reach = True
    still_in_bulk = True
    code: Code
    metric = ""
    _which = 0  # the history this rule reads, in Timeline.hists order

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.next = 0  # values of the metric at which the next check is due
        self.votes = 0  # >0: consecutive hot checks; <0: consecutive clear checks
        self.since = 0  # values logged when the current run of hot checks began

    def _window(self, n: int) -> int:
        t = self.t
        return max(t.plateau_points, math.ceil(t.plateau_fraction * n))

    def _span(self, h: Hist, mult: int) -> int:
        """The window (points of ``h``) of a check: ``mult`` x ``_window`` of the points logged so
        far, counted up to the cap only (past it the window stops growing), and never more than
        the points kept. 0 while it does not fit."""
        n = len(h.values)
        total = h.off + n
        cap = self.tl.cap
        w = mult * self._window(total if total < cap else cap)
        if w > n:
            if not h.off or n < mult * self.t.plateau_points:
                return 0
            w = n  # a metric on only some records: fewer than a window of it kept
        return w

    def observe(self, p: Point, ep: Episodes) -> None:
        """A loss trend's point: the check when one is due (rules on another metric override)."""
        if p.loss is not None and len(self.h.values) >= self.next:
            self._check(p.step, p.early, ep)

    def _check(self, step: int, early: bool, ep: Episodes) -> None:
        raise NotImplementedError

    def _due(self, mult: int) -> int:
        """The window of the check due now (0: none is), the next one scheduled: checks run on a
        stride of a tenth of the window the run's whole length would give (the same before the
        cap; past it the window stops growing but the checks do not get denser)."""
        h = self.h
        n = len(h.values)
        w = self._span(h, mult)
        if not w or n < self.next:
            return 0
        self.next = n + max(1, mult * self._window(h.total) // 10)
        return w

    def _verdict(
        self, ep: Episodes, hot: bool, clear: bool, w: int, step: int, value: float, message: Callable[[], str]
    ) -> None:
        """The check's verdict on a window of ``w`` points; the finding opens at its start."""
        h = self.h
        n = len(h.values)
        if hot:
            self.votes = self.votes + 1 if self.votes > 0 else 1
        elif clear:
            self.votes = self.votes - 1 if self.votes < 0 else -1
        else:
            self.votes = 0
        if self.votes == 1:
            self.since = n
        if self.votes >= _CONFIRM and n - self.since >= w // 2:
            ep.hot(self.code, h.step(n - w), self.metric, value, message())
        elif self.votes <= -self.t.clear_points:
            ep.close(self.code, step)

    # no check falls due inside a stretch: nothing in it can open or close this rule
    def reach(self, c: Cols, i: int, j: int) -> int:
        if c[self._which + 1] is None:  # (Cols lists the steps, then the histories' columns)
            return j - i
        k = self.next - len(self.h.values) - 1
        return k if k < j - i else j - i

    def quiet(self, c: Cols, i: int, j: int, ep: Episodes) -> int:
        return j - i

    def absorb(self, c: Cols, i: int, j: int, ep: Episodes) -> None:
        """(the stretch ends before the next check: the history moved, this rule did not)"""

    def restore(self, state: RuleState, mark: Mark) -> None:
        self.next = 0  # check again at once

    def trimmed(self, dropped: tuple[int, ...]) -> None:
        k = dropped[self._which]
        self.next -= k
        self.since -= k
