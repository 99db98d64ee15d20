"""Keras's ``CSVLogger`` callback: one row per epoch.

``epoch,<metric>,...,val_<metric>`` (sorted keys, ``epoch`` first), written as each epoch ends.
There are no optimiser steps in it: a row's step is the number of epochs done (``epoch`` + 1,
the column is 0-based), so the chart's x axis and every "steps" figure count epochs. ``lr`` or
``learning_rate`` is the learning rate, ``val_*`` the validation metrics.
"""

from __future__ import annotations

from .csvtable import CsvReader, header_cells

NAME = "keras-csv"
DESCRIPTION = (
    "`CSVLogger` file: `epoch,<metrics>,val_<metrics>`, one row per epoch; epoch-indexed, so a "
    "row's step is its epoch + 1 (epochs done) and steps count epochs; `loss` → loss, `val_loss` "
    "→ eval_loss, `lr`/`learning_rate` → learning_rate, `accuracy` → mean_token_accuracy"
)


def detect(seg: bytes) -> bool:
    cells = header_cells(seg)
    if cells is None or cells[0] != b"epoch":
        return False
    names = {c.strip() for c in cells}
    return b"loss" in names and b"step" not in names


class Reader(CsvReader):
    step_columns = ()
    epoch_indexed = True

    def is_header(self, cells: list[bytes]) -> bool:
        return cells[0] == b"epoch"
