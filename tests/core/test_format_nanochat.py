"""nanochat speedrun stdout (core/formats/nanochat.py), on the real logs."""

from __future__ import annotations

import pytest

from helpers import FORMATS, critical, max_steps, parse, report, shared
from sfttop.core.parse import NANOCHAT, LogParser
from sfttop.core.records import Event, EventKind, Item, expand

C = FORMATS / "nanochat"


@pytest.mark.parametrize(
    ("rel", "train", "evals", "phases"),
    [
        # counts from ../shared/logs/SOURCES.md; phases: the step counter restarts this often
        ("nanochat-d24-4x3090-73h/speedrun.log", 6244, 28, 1),
        ("nanochat-d20-crash-disk-full-midtrain/speedrun.log", 21400, 87, 0),
        ("nanochat-d20-full-sft-val-flat/speedrun.log", 22851, 102, 2),
        ("nanochat-oom-step0/speedrun.log", 0, 1, 0),
    ],
)
def test_real_logs_counts(rel: str, train: int, evals: int, phases: int) -> None:
    fmt, tr, ev, events, _ = parse(shared(rel), budget=1 << 20)
    assert fmt == NANOCHAT
    assert (len(tr), len(ev)) == (train, evals)
    assert len([e for e in events if e.kind is EventKind.RESUMED]) == phases


def test_real_d24_first_and_last_values() -> None:
    _, tr, ev, _, _ = parse(shared("nanochat-d24-4x3090-73h/speedrun.log"), budget=1 << 20)
    assert (tr[0].step, tr[0].metrics) == (
        0,
        {"loss": 10.397083, "lr_multiplier": 1.0, "step_time_ms": 113785.11, "tokens_per_second": 9215.0, "mfu": 16.05},
    )
    assert tr[5741].step == 5741 and tr[5742].step == 1  # base training, then the next phase
    assert tr[-1].step == 502
    assert ev[-1].step == 502 and ev[-1].metrics == {"eval_bpb": 0.3673, "eval_ChatCORE": 0.3164, "eval_ChatCORE_cat": 0.2579}


def test_phases_core_metrics_and_max_steps() -> None:
    fmt, tr, ev, events, skipped = parse(C / "d24-phases.log")
    assert fmt == NANOCHAT and skipped == 0
    assert len(tr) == 32
    assert [(r.step, sorted(r.metrics)) for r in ev] == [
        (0, ["eval_bpb"]),
        (2000, ["eval_bpb", "eval_core"]),  # the CORE metric joins the validation of its step
        (5742, ["eval_bpb", "eval_core"]),
        (0, ["eval_bpb"]),
        (200, ["eval_ChatCORE", "eval_ChatCORE_cat", "eval_bpb"]),
    ]
    assert [(e.kind, e.step) for e in events] == [(EventKind.RESUMED, 1)]
    assert "phase" in events[0].message
    assert max_steps(C / "d24-phases.log") == [5742]


def test_sft_crlf_no_space_before_the_bar_and_benchmarks() -> None:
    _, tr, ev, _, _ = parse(C / "sft-crlf.log")
    assert tr[0].step == 0 and tr[0].metrics == {"loss": 0.747464, "lr_multiplier": 1.0, "num_tokens": 8804.0}
    assert [r.step for r in ev] == [0, 200, 681]
    assert ev[1].metrics == {"eval_loss": 1.012795, "eval_mmlu_acc": 0.347656, "eval_arc_easy_acc": 0.441406}
    assert max_steps(C / "sft-crlf.log") == [682]


def test_thousands_separators() -> None:
    _, tr, _, events, _ = parse(C / "crash-disk-full.log")
    assert tr[0].metrics["tokens_per_second"] == 1086497.0  # printed 1,086,497
    assert [e.kind for e in events] == [EventKind.CRASHED] and "disk space" in events[0].message


def test_malformed_lines_are_skipped_and_counted() -> None:
    parser = LogParser()
    items: list[Item] = []
    events: list[Event] = []
    lines = [
        b"step 00000/00010 (0.00%) | loss: 10.1 | lrm: 1.00 | dt: 100.0ms | tok/sec: 9,215 | mfu: 1.0 | total time: 0.00m",
        b"step 00001/00010 (10.00%) | loss: ten | lrm: 1.00",
        b"step 00002/00010 (20.00%) | loss: 9.5 | lrm: 1.00 | dt: 99.0ms | tok/sec: 9,300 | mfu: 1.0 | total time: 0.01m",
        b"Step 00002 | saving checkpoint",  # a message, not a record
    ]
    for i, line in enumerate(lines):
        parser.feed(line, i, items, events)
    parser.flush(items)
    assert parser.format == NANOCHAT
    assert [r.step for r in expand(items)] == [0, 2]
    assert parser.stats.skipped == 1


def test_reports() -> None:
    r, code = report(C / "oom-step0.log")
    assert r["runs"][0]["format"] == NANOCHAT
    assert code == 1 and critical(r["runs"][0]) == {"run_crashed"}  # CUDA out of memory at step 0
    r, code = report(C / "sft-crlf.log")
    assert r["runs"][0]["format"] == NANOCHAT and code == 0
