"""A run written after another into the same file (a notebook calling ``train()`` again, a
script re-run with ``>>``, nanochat's next phase) is shown and judged as itself: the old run's
later steps do not stay in its charts, counts, findings or progress (issue 16: "a step that goes
back inside one file is a new attempt"). A resume from a checkpoint is not one (its goldens)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from helpers import REAL, shared
from sfttop.core.config import Config
from sfttop.core.report import build

NOW = 2e9


def _run(path: Path) -> dict:
    report, _code = build([str(path)], Config(), clock=lambda: NOW)
    (run,) = report["runs"]
    return run


def _judged(run: dict) -> dict:
    keep = ("records", "last_step", "max_steps", "status", "findings", "assessment", "best_checkpoint", "checklist")
    return {k: run[k] for k in keep}


@pytest.mark.parametrize("lib", ["tf4", "tf5"])
@pytest.mark.parametrize(
    ("first", "second"),
    [("healthy", "stall"), ("stall", "overfit"), ("explode", "healthy"), ("healthy", "explode"), ("overfit", "healthy"),
     ("crash", "healthy"), ("healthy", "healthy_multi")],
)
def test_a_second_run_appended_is_judged_as_itself(lib: str, first: str, second: str, tmp_path: Path) -> None:
    alone = tmp_path / "alone" / "train.log"
    both = tmp_path / "both" / "train.log"
    for p in (alone, both):
        p.parent.mkdir()
    second_text = (REAL / lib / second / "train.log").read_bytes()
    alone.write_bytes(second_text)
    both.write_bytes((REAL / lib / first / "train.log").read_bytes() + second_text)
    for p in (alone, both):
        os.utime(p, (NOW - 10, NOW - 10))
    got, want = _run(both), _run(alone)
    assert got["attempt"] == 2
    assert _judged(got) == _judged(want)


def test_resuming_from_a_checkpoint_is_not_a_new_run() -> None:
    run = _run(REAL / "tf4" / "resumed" / "train.log")
    assert run["attempt"] == 1 and run["records"]["train"] == 30


def test_nanochat_phases_each_start_over() -> None:
    run = _run(shared("nanochat-d24-4x3090-73h") / "speedrun.log")
    # base training (5742 steps) then midtraining from step 1, with no total of its own
    assert run["attempt"] == 2 and run["last_step"] == 502 and run["max_steps"] is None
    assert run["records"]["train"] == 502
