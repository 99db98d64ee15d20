"""nanoGPT stdout (core/formats/nanogpt.py), on the real logs."""

from __future__ import annotations

import math

from helpers import FORMATS, critical, parse, report, shared
from sfttop.core.parse import NANOGPT, LogParser
from sfttop.core.records import Event, Item, expand

N = FORMATS / "nanogpt"


def test_real_termux_log_counts_values_and_the_nan() -> None:
    fmt, tr, ev, _, skipped = parse(shared("nanogpt-termux-nan-at-iter425/train.log"))
    assert fmt == NANOGPT and skipped == 0
    assert (len(tr), len(ev)) == (91, 5)  # SOURCES.md
    assert (tr[0].step, tr[-1].step) == (0, 450)
    assert tr[0].metrics == {"loss": 4.2709, "step_time_ms": 10268.08}  # the mfu -100.00% placeholder is not a value
    assert tr[1].metrics == {"loss": 4.2082, "step_time_ms": 1431.27, "mfu": 0.01}
    assert [r.step for r in ev] == [0, 100, 200, 300, 400]
    assert ev[-1].metrics == {"eval_train_loss": 3.3296, "eval_loss": 3.3687}
    nans = [r.step for r in tr if math.isnan(r.metrics["loss"])]
    assert nans == [425, 430, 435, 440, 445, 450]


def test_real_wandb_capture_with_a_unit_after_the_losses() -> None:
    fmt, tr, ev, _, skipped = parse(shared("nanogpt-shakespeare-overfit/output.log"))
    assert fmt == NANOGPT and skipped == 0
    # SOURCES.md counts 501 iter lines; the last one has no line break, and an unterminated
    # line is never read (it may be half-written).
    assert (len(tr), len(ev)) == (500, 21)
    assert (tr[0].step, tr[-1].step) == (0, 4990)
    assert ev[-1].step == 5000 and ev[-1].metrics == {"eval_train_loss": 0.1191, "eval_loss": 4.9221}


def test_fixture_excerpts() -> None:
    fmt, tr, ev, _, skipped = parse(N / "wandb-output-bpc.log")
    assert fmt == NANOGPT and skipped == 0
    assert [r.step for r in tr] == list(range(0, 320, 10))
    assert [(r.step, r.metrics["eval_loss"]) for r in ev] == [(0, 6.0586), (250, 2.7931)]
    assert tr[1].metrics == {"loss": 4.5735, "step_time_ms": 267.36, "mfu": 8.92}
    fmt, tr, ev, _, _ = parse(N / "termux-nan.log")
    assert (len(tr), len(ev)) == (91, 5)


def test_malformed_lines_are_skipped_and_counted() -> None:
    parser = LogParser()
    items: list[Item] = []
    events: list[Event] = []
    lines = [
        b"iter 0: loss 4.2709, time 10268.08ms, mfu -100.00%",
        b"iter 5: loss four, time 1431.27ms, mfu 0.01%",
        b"iter 10: loss 4.1, time 1431.27ms, mfu 0.01%",
        b"step 10: train loss ?, val loss 4.0",
        b"iterating over the dataset",
    ]
    for i, line in enumerate(lines):
        parser.feed(line, i * 100, items, events)
    parser.flush(items)
    assert [r.step for r in expand(items)] == [0, 10]
    assert parser.stats.skipped == 2


def test_report_exit_status() -> None:
    r, code = report(N / "termux-nan.log")
    assert r["runs"][0]["format"] == NANOGPT
    assert code == 1 and "loss_nonfinite" in critical(r["runs"][0])
    r, code = report(shared("nanogpt-termux-nan-at-iter425/train.log"))
    assert code == 1 and "loss_nonfinite" in critical(r["runs"][0])
