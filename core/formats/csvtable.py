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

import re
from array import array

from sfttop.core.metrics import canonical
from sfttop.core.records import Block, Event, Item, Kind, Record

from .base import MIN_BLOCK, LineReader, Stats

_CELL = re.compile(rb"[A-Za-z_][\w./\- ]{0,79}")
MAX_COLUMNS = 512
_EVAL_PREFIXES = ("val_", "valid_", "validation_", "val/", "valid/", "validation/", "eval_", "eval/")
_TRAIN_PREFIXES = ("train_", "train/", "training_", "training/")

STEP, EPOCH, TRAIN, EVAL, IGNORE = range(5)


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
        self._row: dict[str, float] = {}  # the train metrics of the step being read
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
        if self.epoch_indexed and epoch is not None:
            epoch += 1  # the row is written as the epoch ends
            if step is None:
                step = epoch
        if step is None or step != step or (not train_names and not evals):
            if step is None and (train_names or evals):
                self.stats.skip(seg)  # metrics with no step to put them at
            return True
        s = int(step)
        if train_names:
            row = self._row
            if row and self._row_step == s:
                # One logging call, several rows: Lightning's LearningRateMonitor writes its
                # lr-* row apart from the step's metrics row, at the same step.
                row.update(zip(train_names, train_vals))
                if self._row_epoch is None:
                    self._row_epoch = epoch
            else:
                self._commit(out_records, out_events)
                self._row = dict(zip(train_names, train_vals))
                self._row_step, self._row_epoch, self._row_offset = s, epoch, offset
        if evals:
            self._commit(out_records, out_events)
            self.eval(s, evals, offset, out_records, False)
            if self._eval is not None:
                self._eval.epoch = epoch
        return True

    def _commit(self, out_records: list[Item], out_events: list[Event]) -> None:
        """The train record of the rows read for one step, once a row of another step (or an
        eval, or the end of what there is) shows the step is complete."""
        row = self._row
        if row:
            self._row = {}
            self.train(self._row_step, tuple(row), tuple(row.values()), self._row_offset, out_records, out_events)
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
