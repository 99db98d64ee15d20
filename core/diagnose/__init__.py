"""The diagnoser: turns a stream of records and events into finding episodes.

A *finding* is one episode of one pathology (``episodes.py``). ``observe()`` returns only the
findings that opened on that record, so a caller rings the bell, shows the banner or runs the
alert command once per episode, never once per line.

This module is the façade. The rules live in ``rules/``, one module per family (non-finite
values, gradients, loss, trends, learning rate, accuracy, evals, run state), each one a
``TrainRule`` (or, for evals and run events, a plain class) that owns its state. The history they
look back on is in ``history.py``, the statistics in ``stats.py``.

Everything is incremental, and a record never rescans the history (a 300k-record log is
diagnosed at a few microseconds a record). A block of train records (``observe_block``) is taken
in stretches: where every rule proves that nothing can open or close on a stretch
(``TrainRule.reach`` and ``quiet``), each rule ``absorb``s it with C-level calls over the
columns, to exactly the state the records one by one would leave; everything else goes through
the same rules' ``observe``, record by record.

Noise handling follows the research note (Part B): judge spikes with the Iglewicz-Hoaglin modified
z-score over a trailing window plus a ratio to the rolling median (a per-step loss is an interval
mean and fairly smooth; grad_norm is instantaneous and heavy-tailed, so it gets a much looser
rule); judge trends on medians at both ends of a long window; keep non-finite values out of every
smoother; and do not cry wolf in early training, where the loss is high and falls fast and grad
norms are large.

Memory is bounded whatever the run's length (``history.py``). The one change in behaviour past
``HISTORY_CAP``: the long windows of the loss-plateau and slow-accuracy checks are
``plateau_fraction`` of the points logged so far only up to the cap, and then stop growing; runs
shorter than the cap are judged as before.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

from sfttop.core.config import Thresholds
from sfttop.core.metrics import ENTROPY, EVAL_LOSS, GRAD_NORM, LOSS, LR, TOKEN_ACC
from sfttop.core.objective import Objective, detect
from sfttop.core.records import Block, Event, Kind, Record
from sfttop.core.textfmt import fmt, json_value

from .episodes import ADVICE, CODES, MUTED, RULES, Code, Episodes, Finding, Severity, title
from .history import RuleState, Timeline
from .rules import Cols, Context, EvalRules, Point, RunState, TrainRule, train_rules
from .rules.lr import LearningRate
from .rules.trend import Plateau
from .rules.unstable import Unstable
from .stats import median, modified_z, sorted_median

__all__ = [
    "ADVICE",
    "CODES",
    "EVAL_CAP",
    "HISTORY_CAP",
    "RULES",
    "Code",
    "Diagnoser",
    "Finding",
    "Severity",
    "fmt",
    "json_value",
    "median",
    "modified_z",
    "sorted_median",
    "title",
]

_TRAIN, _EVAL, _SUMMARY = Kind.TRAIN, Kind.EVAL, Kind.SUMMARY
_STALLED, _CRASHED = Code.RUN_STALLED, Code.RUN_CRASHED
isfinite = math.isfinite

# Memory bound: at HISTORY_CAP kept train records the oldest half of the per-record history is
# dropped in one O(cap) trim, past EVAL_CAP evals the oldest half of the evals. At 48 bytes a
# train record (the step and five metrics) a run's train history peaks at ~0.4 MB, its evals at
# ~0.1 MB. The long-window checks stop growing their window at plateau_fraction x HISTORY_CAP
# points (1638 for the loss plateau, 3277 for slow accuracy).
HISTORY_CAP = 8192
EVAL_CAP = 512
# Records whose keys are read for the run's objective: trainers log the same keys every time,
# so the first few say it; after them a record costs no look at its keys.
_OBJECTIVE_RECORDS = 16
_BULK = 64  # records taken in bulk at most at a time (bounds are tighter over short stretches)
_HALVINGS = 3  # proofs of a stretch and of its halves before its records go one by one
_HALF_MIN = 4  # no proof for fewer records than this
_Absorb = Callable[[Cols, int, int, Episodes], None]
_Hooks = tuple[
    tuple[Callable[[Cols, int, int], int], ...],  # reach
    tuple[Callable[[Cols, int, int, Episodes], int], ...],  # quiet
    tuple[_Absorb, ...],  # absorb
    tuple[tuple[tuple[Code, ...], _Absorb], ...],  # absorb while one of the codes is open (cools_only)
    # (quiet_block, quiet) of the rules that can prove a whole block at once: their quiet joins
    # the block's quiet hooks only where quiet_block did not
    tuple[tuple[Callable[[Cols, Episodes], bool], Callable[[Cols, int, int, Episodes], int]], ...],
]


class Diagnoser:
    """Feed it records and events in log order; read ``findings``/``active()``."""

    def __init__(
        self,
        thresholds: Thresholds | None = None,
        *,
        max_steps: int | None = None,
        history_cap: int = HISTORY_CAP,
        eval_cap: int = EVAL_CAP,
    ) -> None:
        self.t = t = thresholds if thresholds is not None else Thresholds()
        self.restarts = 0
        self.records = 0
        self.last_step: int | None = None
        self.last_train_step: int | None = None
        self.bulked = 0  # train records taken in bulk (observe_block): how well the fast path works
        self._keys_left = _OBJECTIVE_RECORDS
        # the timeline keeps at most cap train records, never so few that a trim leaves less than
        # two rolling windows; a mark keeps a window's worth of losses (medians that straddle it)
        cap = max(history_cap, 4 * max(t.window_points, t.smooth_points) + 4) // 2 * 2
        self._tl = Timeline(cap, t.early_points, max(3, t.smooth_points - 1, t.window_points))
        self._ctx = ctx = Context(t, self._tl, max_steps)
        self._ep = Episodes()  # (after the timeline: what reaches the rules through it comes second)
        self.findings: list[Finding] = self._ep.findings
        self._rules = train_rules(ctx)
        self._rest = self._rules[1:]  # (the first, NonFinite, may stop a record: see _train)
        self._run = RunState(ctx)
        self._eval = EvalRules(ctx, eval_cap)
        for r in self._rules:
            if isinstance(r, Unstable):
                r.evals = self._eval.log.kept  # (eval swings are evidence of instability)
        self._point = Point()  # the record the train rules are looking at (one, reused)
        self._plateau = next(r for r in self._rules if isinstance(r, Plateau))
        self._lr = next(r for r in self._rules if isinstance(r, LearningRate))
        self._ep.lr = self._lr  # (advice quotes the run's own learning rate)
        self._bulk_hooks = self._hooks()
        self._tl.start(self._states())

    # ---------------------------------------------------------------------------- state
    @property
    def max_steps(self) -> int | None:
        return self._ctx.max_steps

    @max_steps.setter
    def max_steps(self, v: int | None) -> None:  # set it when the caller learns it (banner, bar)
        self._ctx.max_steps = v

    @property
    def objective(self) -> Objective:
        """What the run optimises, from the keys of its first records (SFT until they say
        otherwise). Codes that judge a cross-entropy are muted for the others."""
        return self._ctx.objective

    def _see(self, names: Iterable[str], step: int) -> None:
        self._keys_left -= 1
        o = detect(names)
        if o is not Objective.SFT and self._ctx.objective is Objective.SFT:
            self._ctx.objective = o
            self._ep.mute(MUTED[o], step)

    @property
    def checkpoints(self) -> Callable[[], dict[int, str]] | None:
        """Lists the run's checkpoint-N directories (step -> path); set by a caller that knows
        where the run is, so that an overfitting finding names the directory to keep."""
        return self._eval.saved

    @checkpoints.setter
    def checkpoints(self, v: Callable[[], dict[int, str]] | None) -> None:
        self._eval.saved = v

    @property
    def finished(self) -> bool:
        return self._run.finished

    @finished.setter
    def finished(self, v: bool) -> None:
        self._run.finished = v

    @property
    def crashed(self) -> bool:
        return self._run.crashed

    @crashed.setter
    def crashed(self, v: bool) -> None:
        self._run.crashed = v

    @property
    def generation(self) -> int:
        """Bumped whenever a finding opens or closes."""
        return self._ep.generation

    @property
    def rules(self) -> tuple[TrainRule, ...]:
        """The train rules, in the order each record visits them."""
        return self._rules

    def _states(self) -> tuple[RuleState, ...]:
        return tuple(r.state() for r in self._rules)

    # ---------------------------------------------------------------------------- records
    def observe(self, rec: Record, now: float | None = None) -> list[Finding]:
        """Take one record; return the findings that opened on it."""
        ep = self._ep
        self.records += 1
        if now is not None:
            self._run.arrived(now)
        step = rec.step
        if self.last_step is None or step > self.last_step:
            self.last_step = step
        if ep.open and _STALLED in ep.open:
            ep.close(_STALLED, step)
        kind = rec.kind
        m = rec.metrics
        if self._keys_left:
            self._see(m, step)
        if kind is _SUMMARY:
            if "train_runtime" in m or "train_loss" in m:
                self._run.finished = True
                self._eval.summary(self.last_train_step, rec.epoch)
            return ep.take()
        if kind is _TRAIN:
            self._run.train(step, ep)
            self._train(step, m.get(LOSS), m.get(GRAD_NORM), m.get(LR), m.get(TOKEN_ACC), m.get(ENTROPY))
        if kind is _EVAL or EVAL_LOSS in m:
            self._eval.observe(rec, ep, self.last_train_step)
        return ep.take()

    def observe_block(self, block: Block, now: float | None = None) -> list[Finding]:
        """Take a block of train records; the same as ``observe()`` on each of its records.

        Stretches where no rule can fire are taken in bulk (see ``_stretch``); everything else
        (early training, a value that might be a spike, a check due, a rebound being counted)
        goes through the rules record by record."""
        cols = dict(zip(block.names, block.columns))
        n = len(block)
        if n == 0:
            return []
        if self._keys_left:
            self._see(block.names, block.steps[0])
        if self.t.smooth_points != 3 or EVAL_LOSS in cols:
            new: list[Finding] = []
            for rec in block.records():
                new.extend(self.observe(rec, now))
            return new
        # what observe() does besides _train: for the first record (the others repeat it to no
        # effect, having the same arrival time)
        steps = block.steps
        ep = self._ep
        if now is not None:
            self._run.arrived(now)
        for key in (_STALLED, _CRASHED):
            if key in ep.open:
                ep.close(key, steps[0])
        self._run.crashed = self._run.finished = False
        c = Cols(steps, cols.get(LOSS), cols.get(GRAD_NORM), cols.get(LR), cols.get(TOKEN_ACC), cols.get(ENTROPY))
        hooks = self._block_hooks(c)
        i = 0
        while i < n:
            span = self._stretch(c, i, n, hooks)
            if span > 0:
                self._absorb(c, i, i + span, hooks)
                i += span
                continue
            end = min(n, i - span)
            for k in range(i, end):
                self.records += 1
                step = steps[k]
                if self.last_step is None or step > self.last_step:
                    self.last_step = step
                p = c.loss, c.grad, c.lr, c.acc, c.ent
                self._train(step, *(col[k] if col is not None else None for col in p))
            i = end
        return ep.take()

    def _hooks(self) -> _Hooks:
        """The rules' bulk hooks, bound once, only those with something to say."""
        rules = self._rules
        whole = [r for r in rules if not r.quiet_by_reach and type(r).quiet_block is not TrainRule.quiet_block]
        return (
            tuple(r.reach for r in rules if type(r).reach is not TrainRule.reach),
            tuple(r.quiet for r in rules if not r.quiet_by_reach and r not in whole),
            tuple(r.absorb for r in rules if not r.still_in_bulk and not r.cools_only),
            tuple((r.codes, r.absorb) for r in rules if r.cools_only),
            tuple((r.quiet_block, r.quiet) for r in whole),
        )

    def _block_hooks(self, c: Cols) -> _Hooks:
        """The bulk hooks for one block: a rule that proved the whole block quiet is not asked
        again for each of its stretches."""
        hooks = self._bulk_hooks
        ep = self._ep
        rest = tuple(q for whole, q in hooks[4] if not whole(c, ep))
        return (hooks[0], hooks[1] + rest, hooks[2], hooks[3], hooks[4]) if rest else hooks

    def _stretch(self, c: Cols, i: int, n: int, hooks: _Hooks) -> int:
        """How many records from ``i`` on can be absorbed (> 0), or minus how many must go one by
        one (< 0): every rule lets the stretch reach that far and proves it quiet."""
        tl = self._tl
        nt = len(tl.steps)
        lts = self.last_train_step
        # conditions of the record itself (a resume, a trim due, early training): one at a time
        if (lts is not None and c.steps[i] <= lts) or nt >= tl.due or nt < tl.early_n:
            return -1
        m = n - i if n - i < _BULK else _BULK
        if tl.due - nt < m:
            m = tl.due - nt
        for reach in hooks[0]:
            k = reach(c, i, i + m)
            if k < m:
                if k <= 0:
                    return -1
                m = k
        ep = self._ep
        # A stretch no rule can prove quiet is tried again at half its length, a few times: a
        # falling loss or one suspicious value often spoils only part of it, and a record taken
        # one by one costs as much as a dozen proofs.
        for _ in range(_HALVINGS):
            j = i + m
            for quiet in hooks[1]:
                if quiet(c, i, j, ep) < m:
                    break
            else:
                return m
            if m < 2 * _HALF_MIN:
                break
            m >>= 1
        return -m

    def _absorb(self, c: Cols, i: int, j: int, hooks: _Hooks) -> None:
        tl = self._tl
        m = j - i
        nt = len(tl.steps)
        tl.steps.extend(c.steps[i:j])
        self.records += m
        self.bulked += m
        last = c.steps[j - 1]
        self.last_train_step = last
        if self.last_step is None or last > self.last_step:
            self.last_step = last
        ep = self._ep
        for f in hooks[2]:
            f(c, i, j, ep)
        open_ = ep.open
        if open_:
            for codes, f in hooks[3]:
                for code in codes:
                    if code in open_:
                        f(c, i, j, ep)
                        break
        if c.ent is not None:
            tl.ent.values.extend(c.ent[i:j])
        else:
            tl.ent.gaps.extend(range(nt, nt + m))

    def _train(
        self,
        step: int,
        loss: float | None,
        grad: float | None,
        lr: float | None,
        acc: float | None,
        ent: float | None,
    ) -> None:
        # The hot path of the whole program: it runs once per train record not taken in bulk.
        if self.last_train_step is not None and step <= self.last_train_step:
            self._restart(step)
        self.last_train_step = step
        tl = self._tl
        nt = len(tl.steps)
        if nt >= tl.due:
            self._housekeep()
            nt = len(tl.steps)
        tl.steps.append(step)
        ms = self._ctx.max_steps
        p = self._point
        p.step = step
        p.row = nt
        p.early = nt < tl.early_n or (ms is not None and ms != 0 and step <= self.t.early_fraction * ms)
        p.broken = False
        p.loss, p.grad, p.lr, p.acc, p.ent = loss, grad, lr, acc, ent
        ep = self._ep
        self._rules[0].observe(p, ep)  # non-finite values: a broken record goes no further
        if p.broken:
            return
        for r in self._rest:
            r.observe(p, ep)
        if ent is not None and isfinite(ent):
            tl.ent.values.append(ent)
        else:
            tl.ent.gaps.append(nt)

    # ---------------------------------------------------------------------------- history
    def _restart(self, step: int) -> None:
        """Steps went backwards: the run resumed from a checkpoint. Cut the timeline back.

        The state is rebuilt from the latest trim mark before ``step`` plus the kept records
        before it, so a resume within the kept history ends exactly as if nothing had been
        trimmed. A resume past it (further back than the kept records) starts from the mark
        before ``step``: the records between the mark and ``step`` are gone, and the rolling
        windows refill as at the start of a run."""
        self.restarts += 1
        mark = self._tl.rewind(step)
        for r, s in zip(self._rules, mark.states):
            r.restore(s, mark)
        self._eval.cut(step)

    def _housekeep(self) -> None:
        """Called before a record is appended once ``due`` records are kept. At ``cap / 2`` kept
        records, mark the state (what a resume to a later step starts from); at ``cap``, drop the
        marked half in one O(cap) trim, and mark again."""
        tl = self._tl
        if tl.snap is not None and len(tl.steps) >= tl.cap:
            dropped = tl.trim(tl.snap)
            for r in self._rules:
                r.trimmed(dropped)
        tl.snap = tl.mark(self._states())
        tl.due = tl.cap

    def _early(self, step: int) -> bool:
        return self._ctx.early(step)

    # ---------------------------------------------------------------------------- events
    def observe_event(self, ev: Event, now: float | None = None) -> list[Finding]:
        """Take a tailer/parser event (crash, finish, max_steps...); return findings it opened."""
        step = ev.step if ev.step is not None else (self.last_step if self.last_step is not None else 0)
        self._run.event(ev, step, self._ep)
        return self._ep.take()

    def check_stall(self, now: float) -> list[Finding]:
        """Open ``run_stalled`` when nothing arrived for max(stall_factor x the median interval
        between records, stall_min_seconds). Not for finished or crashed runs."""
        self._run.stall(now, self.last_step if self.last_step is not None else 0, self._ep)
        return self._ep.take()

    def stall_limit(self) -> float:
        return self._run.stall_limit()

    # ---------------------------------------------------------------------------- views
    @property
    def stalled(self) -> bool:
        """A ``run_stalled`` episode is open: no record for past the stall limit."""
        return _STALLED in self._ep.open

    def active(self) -> list[Finding]:
        return [f for f in self.findings if f.active]

    def worst_active(self) -> Severity | None:
        worst: Severity | None = None
        for f in self.findings:
            if f.active and (worst is None or f.severity > worst):
                worst = f.severity
        return worst

    def worst(self) -> Severity | None:
        """The worst severity of any finding, closed ones included (the report's exit status)."""
        return max((f.severity for f in self.findings), default=None)

    def lr_peak(self) -> float | None:
        return self._lr.peak if self._lr.peak > 0 else None

    @property
    def lr_direction(self) -> int:
        """The run's one learning-rate direction (-1 lower, +1 raise, 0 none yet), set by the
        first finding whose advice has one (``Episodes._advice``): the assessment's LR line
        reads it rather than judging the LR against a range of its own."""
        return self._ep.lr_dir
