"""What the CSV loggers share: a header line naming the columns, then one row per log call.

Trackers write a table rather than lines of text: Lightning's and Keras's ``CSVLogger`` and a
W&B ``run.history()`` export. Each row is read by the header above it: a cell left empty is a
metric not logged in that call (Lightning writes sparse rows: a step row, a validation row and an
epoch row each fill their own columns), a row whose cell count differs from the header's, or
whose cell is not a number, is skipped and counted. A header line met again later replaces the
first: Lightning rewrites ``metrics.csv`` from its start with a wider header when a new metric
appears (the tail then reads the file again from its start).

Columns are named by the user, so names are mapped by meaning before ``metrics.canonical``: a
``_step`` suffix (Lightning's per-step copy of a metric) is dropped, a ``train_``/``train/``
prefix is dropped and a ``val_``/``valid_``/``validation_`` prefix becomes ``eval_``. A row's
train metrics make a train record and its eval metrics an eval record at the same step.
"""

from __future__ import annotations

import math
import operator
import re
from array import array
from collections.abc import Callable
from dataclasses import dataclass
from itertools import accumulate
from operator import itemgetter

import orjson

from sfttop.core.metrics import canonical
from sfttop.core.records import Block, Event, Item, Kind, Record

from .base import MIN_BLOCK, LineReader, Stats

_CELL = re.compile(rb"[A-Za-z_][\w./\- ]{0,79}")
MAX_COLUMNS = 512
_EVAL_PREFIXES = ("val_", "valid_", "validation_", "val/", "valid/", "validation/", "eval_", "eval/")
_TRAIN_PREFIXES = ("train_", "train/", "training_", "training/")

STEP, EPOCH, TRAIN, EVAL, IGNORE = range(5)
_NUMBERS = frozenset((int, float))


def header_cells(seg: bytes) -> list[bytes] | None:
    """The column names of ``seg`` when it is a CSV header line (every cell a name), else None."""
    if b"," not in seg:
        return None
    cells = seg.rstrip(b"\r\n").split(b",")
    if len(cells) > MAX_COLUMNS:
        return None
    for c in cells:
        if _CELL.fullmatch(c) is None:
            return None
    return cells


def metric_name(raw: str) -> tuple[str, bool]:
    """(canonical name, is an eval metric) of a user-named column."""
    key = raw.strip()
    low = key.lower()
    if low.endswith("_step"):
        key, low = key[:-5], low[:-5]
    for p in _EVAL_PREFIXES:
        if low.startswith(p):
            name = canonical("eval_" + key[len(p) :])
            return name, True
    for p in _TRAIN_PREFIXES:
        if low.startswith(p) and len(low) > len(p):
            key = key[len(p) :]
            break
    name = canonical(key)
    return name, name.startswith("eval_")


@dataclass(frozen=True, slots=True)
class _Plan:
    """Which cells of a header's rows are read: the train metrics', the eval metrics', then
    the step's and the epoch's, in that order (each group in column order)."""

    cells: Callable[[list[bytes]], tuple[bytes, ...]]
    train: int  # how many train metrics
    train_names: tuple[str, ...]
    eval_names: tuple[str, ...]
    step_i: int  # where the step is among the cells read (-1: no step column)
    epoch_i: int

    @staticmethod
    def of(roles: list[tuple[int, str]]) -> _Plan | None:
        train = [(i, n) for i, (r, n) in enumerate(roles) if r == TRAIN]
        evals = [(i, n) for i, (r, n) in enumerate(roles) if r == EVAL]
        idx = [i for i, _ in train] + [i for i, _ in evals]
        step_i = epoch_i = -1
        for role in (STEP, EPOCH):
            at = next((i for i, (r, _) in enumerate(roles) if r == role), -1)
            if at >= 0:
                if role == STEP:
                    step_i = len(idx)
                else:
                    epoch_i = len(idx)
                idx.append(at)
        if len(idx) < 2:
            return None  # (itemgetter of one index gives a cell, not a tuple)
        return _Plan(itemgetter(*idx), len(train), tuple(n for _, n in train), tuple(n for _, n in evals), step_i, epoch_i)


class CsvReader(LineReader):
    """One CSV file; subclasses say which columns are the step and the epoch."""

    step_columns: tuple[str, ...] = ("step",)  # the first present is the step
    epoch_column = "epoch"
    epoch_indexed = False  # no step column: the row's epoch (0-based) + 1 is its step

    def __init__(self, stats: Stats) -> None:
        super().__init__(stats)
        self.columns: list[bytes] = []
        self._roles: list[tuple[int, str]] = []
        self._step_at = -1
        self._epoch_at = -1
        self._epochs: list[float] = []
        self._row_names: tuple[str, ...] = ()  # the train metrics of the step being read
        self._row_values: tuple[float, ...] | list[float] = ()
        self._plan: _Plan | None = None
        self._row_step = 0
        self._row_epoch: float | None = None
        self._row_offset = 0
        self.header_seen = 0

    def role(self, raw: str) -> tuple[int, str]:
        """What a column is: (STEP/EPOCH/TRAIN/EVAL/IGNORE, canonical name)."""
        if raw in self.step_columns:
            return STEP, raw
        if raw == self.epoch_column:
            return EPOCH, raw
        name, is_eval = metric_name(raw)
        return (EVAL if is_eval else TRAIN), name

    def set_header(self, cells: list[bytes]) -> None:
        self.emit_pending([])  # (nothing is pending across a header: rows were emitted per line)
        self.header_seen += 1
        self.columns = cells
        roles = [self.role(c.decode("utf-8", "replace").strip()) for c in cells]
        # The step is the first of ``step_columns`` that the header has.
        steps = [i for i, (r, _) in enumerate(roles) if r == STEP]
        order = {n: k for k, n in enumerate(self.step_columns)}
        self._step_at = min(steps, key=lambda i: order.get(roles[i][1], 99)) if steps else -1
        self._epoch_at = next((i for i, (r, _) in enumerate(roles) if r == EPOCH), -1)
        roles = [(r if r != STEP or i == self._step_at else IGNORE, n) for i, (r, n) in enumerate(roles)]
        roles = self.adjust(roles)
        # Two columns meaning one metric (``train_loss`` and ``train_loss_step``): the later
        # keeps its own name rather than overwrite the first.
        taken: set[tuple[int, str]] = set()
        for i, (r, n) in enumerate(roles):
            if r in (TRAIN, EVAL):
                if (r, n) in taken:
                    roles[i] = (r, cells[i].decode("utf-8", "replace").strip())
                taken.add(roles[i])
        self._roles = roles
        self._plan = _Plan.of(roles)

    def adjust(self, roles: list[tuple[int, str]]) -> list[tuple[int, str]]:
        """The roles of a header's columns, changed by what the whole header shows."""
        return roles

    def feed(self, seg: bytes, offset: int, out_records: list[Item], out_events: list[Event]) -> bool:
        cells = seg.rstrip(b"\r").split(b",")
        roles = self._roles
        if len(cells) != len(roles):
            head = header_cells(seg)
            if head is not None and self.is_header(head):
                self._commit(out_records, out_events)
                self.emit_pending(out_records)
                self._release_eval(out_records)
                self.set_header(head)
            elif roles or seg.strip():
                self.stats.skip(seg)
            return True
        plan = self._plan
        if plan is not None:
            # Every cell the header reads filled (a full row): all of them by one map of float
            got = plan.cells(cells)
            if b"" not in got:
                try:
                    vals = list(map(float, got))
                except ValueError:
                    pass
                else:
                    self._take(plan, vals, seg, offset, out_records, out_events)
                    return True
        train_names: list[str] = []
        train_vals: list[float] = []
        evals: dict[str, float] = {}
        step: float | None = None
        epoch: float | None = None
        try:
            for (r, name), c in zip(roles, cells):
                if not c or r == IGNORE:
                    continue
                if r == TRAIN:
                    train_names.append(name)
                    train_vals.append(float(c))
                elif r == EVAL:
                    evals[name] = float(c)
                elif r == STEP:
                    step = float(c)
                else:
                    epoch = float(c)
        except ValueError:
            head = header_cells(seg)
            if head is not None and self.is_header(head):  # the same header again: a rewrite
                self._commit(out_records, out_events)
                self.emit_pending(out_records)
                self._release_eval(out_records)
                self.set_header(head)
            else:
                self.stats.skip(seg)
            return True
        if step is None and (train_names or evals):
            if self.epoch_indexed and epoch is not None:
                step = epoch + 1
            else:
                self.stats.skip(seg)  # metrics with no step to put them at
                return True
        self._row_read(tuple(train_names), train_vals, evals, step, epoch, offset, out_records, out_events)
        return True

    def rows_in_bulk(self) -> bool:
        # (before the header too: a table's first chunk is its header, then rows)
        plan = self._plan
        ok = plan is None or (not plan.eval_names and plan.train > 0 and plan.step_i >= 0)
        return ok and not self.epoch_indexed

    def feed_rows(self, lines: list[bytes], base: int, out_records: list[Item], out_events: list[Event]) -> bool:
        """Full rows of the header read last, train metrics only, steps rising: every cell by
        one orjson call and the columns taken out whole (no call per row). The last row stays
        pending, as when read line by line (the next row may be more of its step)."""
        plan = self._plan
        n = len(lines)
        if plan is None or plan.eval_names or not plan.train or plan.step_i < 0 or self.epoch_indexed or n < 2:
            return False
        width = len(self._roles)
        if b"\n".join(lines).count(b",") != n * (width - 1):
            return False  # (a quoted cell with a comma would read as one value here, two there)
        try:
            rows = orjson.loads(b"[[" + b"],[".join(lines) + b"]]")
        except orjson.JSONDecodeError:
            return False  # an empty cell, a nan, a word: row by row
        if {*map(len, rows)} != {width}:
            return False
        picked = list(map(plan.cells, rows))
        cols = [list(map(itemgetter(i), picked)) for i in range(len(picked[0]))]
        if not all({*map(type, c)} <= _NUMBERS for c in cols):
            return False
        steps = list(map(int, cols[plan.step_i]))
        pending = self._row_step if self._row_names else self.prev_step
        if (pending is not None and steps[0] <= pending) or not all(map(operator.lt, steps, steps[1:])):
            return False  # a step met again, or going back: row by row (merged, or a restart)
        values = [list(map(float, c)) for c in cols[: plan.train]]
        epochs = list(map(float, cols[plan.epoch_i])) if plan.epoch_i >= 0 else [math.nan] * n
        offsets = list(accumulate(map(len, lines[:-1]), lambda a, k: a + k + 1, initial=base))
        self._commit(out_records, out_events)
        self._release_eval(out_records)
        names = plan.train_names
        if names != self._names or self._raw:
            self.emit_pending(out_records)
            self._names, self._raw = names, False
        m = n - 1
        self._steps += steps[:m]
        self._rows += zip(*(c[:m] for c in values))
        self._offsets += offsets[:m]
        self._epochs += epochs[:m]
        self.stats.records += m
        self.prev_step = self.progress_step = steps[m - 1]
        self._row_names, self._row_values = names, [c[m] for c in values]
        last_epoch = epochs[m] if plan.epoch_i >= 0 else None
        self._row_step, self._row_epoch, self._row_offset = steps[m], last_epoch, offsets[m]
        return True

    def _take(
        self, plan: _Plan, vals: list[float], seg: bytes, offset: int, out_records: list[Item], out_events: list[Event]
    ) -> None:
        """A full row, its cells converted in the plan's order."""
        t, e = plan.train, plan.train + len(plan.eval_names)
        step = vals[plan.step_i] if plan.step_i >= 0 else None
        epoch = vals[plan.epoch_i] if plan.epoch_i >= 0 else None
        if step is None and (t or e > t):
            if not (self.epoch_indexed and epoch is not None):
                self.stats.skip(seg)  # metrics with no step to put them at
                return
            step = epoch + 1
        evals = dict(zip(plan.eval_names, vals[t:e])) if e > t else {}
        self._row_read(plan.train_names, vals[:t], evals, step, epoch, offset, out_records, out_events)

    def _row_read(
        self,
        train_names: tuple[str, ...],
        train_vals: list[float],
        evals: dict[str, float],
        step: float | None,
        epoch: float | None,
        offset: int,
        out_records: list[Item],
        out_events: list[Event],
    ) -> None:
        if self.epoch_indexed and epoch is not None:
            epoch += 1  # the row is written as the epoch ends
        if step is None or step != step or (not train_names and not evals):
            return
        s = int(step)
        if train_names:
            if self._row_names and self._row_step == s:
                # One logging call, several rows: Lightning's LearningRateMonitor writes its
                # lr-* row apart from the step's metrics row, at the same step.
                row = dict(zip(self._row_names, self._row_values))
                row.update(zip(train_names, train_vals))
                self._row_names, self._row_values = tuple(row), tuple(row.values())
                if self._row_epoch is None:
                    self._row_epoch = epoch
            else:
                self._commit(out_records, out_events)
                self._row_names, self._row_values = train_names, train_vals
                self._row_step, self._row_epoch, self._row_offset = s, epoch, offset
        if evals:
            self._commit(out_records, out_events)
            self.eval(s, evals, offset, out_records, False)
            if self._eval is not None:
                self._eval.epoch = epoch

    def _commit(self, out_records: list[Item], out_events: list[Event]) -> None:
        """The train record of the rows read for one step, once a row of another step (or an
        eval, or the end of what there is) shows the step is complete."""
        names = self._row_names
        if names:
            values = self._row_values
            self._row_names, self._row_values = (), ()
            self.train(self._row_step, names, tuple(values), self._row_offset, out_records, out_events)
            ep = self._row_epoch
            self._epochs.append(ep if ep is not None else float("nan"))

    def flush(self, out_records: list[Item], final: bool) -> None:
        if final:
            self._commit(out_records, [])
        super().flush(out_records, final)

    def is_header(self, cells: list[bytes]) -> bool:
        return True

    def emit_pending(self, out_records: list[Item]) -> None:
        steps = self._steps
        if not steps:
            return
        names, rows, offsets, epochs = self._names, self._rows, self._offsets, self._epochs
        self._steps, self._rows, self._offsets, self._epochs = [], [], [], []
        has_epochs = not any(e != e for e in epochs)
        if len(steps) >= MIN_BLOCK and len(set(names)) == len(names):
            columns = tuple(array("d", c) for c in zip(*rows))
            eps = array("d", epochs) if has_epochs else None
            out_records.append(Block(names, array("q", steps), columns, eps, array("q", offsets)))
            return
        for step, row, ep, off in zip(steps, rows, epochs, offsets):
            out_records.append(Record(Kind.TRAIN, step, dict(zip(names, row)), ep if ep == ep else None, off))
