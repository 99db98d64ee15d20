"""PyTorch Lightning's ``CSVLogger``: ``lightning_logs/version_N/metrics.csv``.

The header is ``epoch,step`` and every key ever logged, sorted; a row fills only what one
``log_metrics`` call logged. ``self.log(..., on_step=True, on_epoch=True)`` writes a metric twice,
as ``<name>_step`` on step rows and ``<name>_epoch`` (its mean over the epoch) on epoch-end
rows; the per-step values are the series, and a column about an epoch as a whole (a name with an
``epoch`` part: ``train_loss_epoch``, ``epoch_time``) is left out when step-level train columns
exist (an epoch mean would otherwise be one more train record of a different metric). The epoch
column is Lightning's 0-based epoch index.
"""

from __future__ import annotations

import re

from .csvtable import EVAL, IGNORE, TRAIN, CsvReader, header_cells

NAME = "lightning-csv"
DESCRIPTION = (
    "`metrics.csv` of `CSVLogger`: header `epoch,step,<keys>`, sparse rows. Columns are mapped "
    "by meaning: a `_step` suffix and a `train_`/`train/` prefix are dropped, `val_`/`valid_`/"
    "`validation_` become `eval_` (`train_loss_step` → loss, `val_loss` → eval_loss), "
    "`lr-<Optimizer>` (LearningRateMonitor) → learning_rate; a row's train metrics are a train "
    "record (the rows of one step, such as LearningRateMonitor's own `lr-*` row, make one), its "
    "eval metrics an eval record at its `step`; epoch-mean columns (`*_epoch`, "
    "`epoch_*`) are left out when per-step ones exist; a rewritten wider header is followed"
)

_EPOCH_PART = re.compile(r"(?:^|[_/\-])epoch(?:$|[_/\-])", re.IGNORECASE)


def _header(seg: bytes) -> bool:
    cells = header_cells(seg)
    if cells is None:
        return False
    names = {c.strip() for c in cells}
    return b"step" in names and b"_step" not in names and len(names) >= 2


def detect(seg: bytes) -> bool:
    return _header(seg)


class Reader(CsvReader):
    step_columns = ("step",)

    def is_header(self, cells: list[bytes]) -> bool:
        names = {c.strip() for c in cells}
        return b"step" in names

    def adjust(self, roles: list[tuple[int, str]]) -> list[tuple[int, str]]:
        raw = [c.decode("utf-8", "replace") for c in self.columns]
        per_epoch = [r in (TRAIN, EVAL) and _EPOCH_PART.search(n) is not None for (r, _), n in zip(roles, raw)]
        if any(r == TRAIN and not e for (r, _), e in zip(roles, per_epoch)):
            return [(IGNORE, n) if e and r == TRAIN else (r, n) for (r, n), e in zip(roles, per_epoch)]
        return roles
