"""A W&B run's history exported as CSV (``run.history().to_csv()`` or the web UI's export).

Columns are the logged keys plus W&B's own ``_step``, ``_runtime`` and ``_timestamp``. An HF
Trainer run logs ``train/loss``, ``train/global_step``, ``eval/loss``...: the trainer's
``train/global_step`` is the step when present (``_step`` only counts ``wandb.log`` calls), and
the end-of-training summary keys (``train/train_runtime``, ``train/train_loss``...) are not train
metrics and are left out.
"""

from __future__ import annotations

from .csvtable import IGNORE, CsvReader, header_cells

NAME = "wandb-csv"
DESCRIPTION = (
    "W&B history export: `_step,_runtime,<keys>,_timestamp`; step from `train/global_step` "
    "(else `_step`), epoch from `train/epoch`; `train/x` → x, `eval/x` → eval_x; W&B's `_*` "
    "columns and the HF end-of-run summary keys are left out"
)

_SUMMARY = frozenset(("train_runtime", "train_samples_per_second", "train_steps_per_second", "total_flos", "train_loss"))


def detect(seg: bytes) -> bool:
    cells = header_cells(seg)
    if cells is None:
        return False
    names = {c.strip() for c in cells}
    return b"_step" in names and (b"_runtime" in names or b"_timestamp" in names)


class Reader(CsvReader):
    step_columns = ("train/global_step", "_step")
    epoch_column = "train/epoch"

    def is_header(self, cells: list[bytes]) -> bool:
        return detect(b",".join(cells))

    def role(self, raw: str) -> tuple[int, str]:
        if raw in self.step_columns or raw == self.epoch_column:
            return super().role(raw)
        if raw.startswith("_") or (raw.startswith("train/") and raw[6:] in _SUMMARY):
            return IGNORE, raw
        return super().role(raw)
