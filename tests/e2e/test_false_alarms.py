"""Issue #14's false alarms and misses, each on the real log that showed it (the scoreboard's
labels, ``bench/diagnosis_labels.json``): a change to a rule keeps the pathology named and the
healthy run quiet."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from helpers import REAL
from sfttop.core.config import Config
from sfttop.core.report import build

CASES = ("overfit", "explode", "oscillate")
VERSIONS = ("tf4", "tf5", "tb4", "tb5")


def _codes(path: Path) -> list[str]:
    """The run's finding codes, critical ones marked ``!``, judged as of the file's own age (a
    finished log is not 'stalled' because it is old)."""
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    mtime = max(os.stat(p).st_mtime for p in files)
    report, _ = build([str(path)], Config(), clock=lambda: mtime)
    (run,) = report["runs"]
    return [str(f["code"]) + ("!" if f["severity"] == "critical" else "") for f in run["findings"]]


@pytest.mark.parametrize("ver", VERSIONS)
@pytest.mark.parametrize("case", CASES)
def test_entropy_gap_not_named_beside_what_explains_it(ver: str, case: str) -> None:
    # these runs' eval entropy differs from the train entropy by 25-160% only once they memorise,
    # diverge or swing: the pathology is named, the gap is its consequence
    codes = _codes(REAL / ver / case)
    assert "entropy_gap" not in codes, codes
    expected = {"overfit": "overfitting", "explode": "grad_explosion!", "oscillate": "lr_too_large"}[case]
    assert expected in codes, codes
