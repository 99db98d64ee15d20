"""Megatron-LM / Megatron-DeepSpeed stdout (core/formats/megatron.py), on the real logs."""

from __future__ import annotations

import math

import pytest

from helpers import FORMATS, critical, max_steps, parse, report, shared
from sfttop.core.parse import MEGATRON, LogParser
from sfttop.core.records import Event, EventKind, Item, Kind, Record, expand

M = FORMATS / "megatron"


@pytest.mark.parametrize(
    ("rel", "train", "evals", "last", "first_loss"),
    [
        # counts from ../shared/logs/SOURCES.md, taken without sfttop
        ("megatron-deepspeed-qwen7b-500it-validation/qwen7b_baseline_500.log", 500, 6, 500, 12.63599),
        ("megatron-llama3-1b-hang-344of500/stdout.log", 344, 0, 344, 12.18301),
        ("megatron-slurm-nan-gradnorm-dead/1737333.out", 15, 0, 15, None),
        ("megatron-slurm-loss-collapse-to-zero/2256081.out", 343, 0, 343, 10.48136),
        ("megatron-slurm-gradnorm-instability-window/2765350.out", 2092, 0, 2092, 12.20795),
    ],
)
def test_real_logs_counts(rel: str, train: int, evals: int, last: int, first_loss: float | None) -> None:
    fmt, tr, ev, _, skipped = parse(shared(rel))
    assert fmt == MEGATRON
    assert (len(tr), len(ev)) == (train, evals)
    assert [r.step for r in tr] == list(range(1, last + 1))
    assert skipped == 0
    assert tr[0].metrics.get("loss") == first_loss


def test_deepspeed_excerpt_iteration_lines_validation_and_the_steps_copies() -> None:
    fmt, tr, ev, events, skipped = parse(M / "deepspeed-validation.log")
    assert fmt == MEGATRON and skipped == 0
    # 29 iteration lines; the 30 `steps: N loss:` lines repeat them and are not records
    assert [r.step for r in tr] == [*range(1, 17), *range(96, 104), *range(496, 501)]
    first = tr[0].metrics
    assert first["loss"] == 12.63599 and first["learning_rate"] == 2e-07 and first["grad_norm"] == 20.203
    assert first["num_tokens"] == 32768 and first["step_time_ms"] == 15165.9 and first["tflops_per_gpu"] == 7.97
    assert [(r.step, r.metrics["eval_loss"], r.metrics["eval_ppl"]) for r in ev] == [
        (100, 7.66649, 2135.573),
        (500, 6.314754, 552.6661),
        (500, 6.335348, 564.1655),  # the final "on 160-sample draw" validation
    ]
    assert [e.kind for e in events] == [EventKind.FINISHED]
    assert max_steps(M / "deepspeed-validation.log") == [500]


def test_nan_grad_norm_and_a_missing_lm_loss() -> None:
    _, tr, _, events, _ = parse(M / "slurm-nan-gradnorm.out")
    assert len(tr) == 15
    assert "loss" not in tr[0].metrics and "loss" not in tr[1].metrics  # NaN averages are left out
    assert math.isnan(tr[0].metrics["grad_norm"])
    assert tr[2].metrics["loss"] == 10.40111 and tr[14].metrics["learning_rate"] == 3e-05
    assert events[-1].kind is EventKind.FINISHED and "after training is done" in events[-1].message
    assert not events[-1].message.startswith("0:")  # the launcher prefixes are not part of it


def test_srun_label_and_timer_blocks() -> None:
    _, tr, _, _, skipped = parse(M / "srun-prefix-timers.out")
    assert [r.step for r in tr] == list(range(1, 14)) and skipped == 0
    assert tr[0].metrics["params_norm"] == 657.153


def test_another_ranks_output_glued_after_the_last_field() -> None:
    _, tr, _, _, skipped = parse(M / "glued-rank-output.out")
    assert [r.step for r in tr] == list(range(225, 236)) and skipped == 0
    assert {r.step: r.metrics["loss"] for r in tr}[230] == 4.648879e-03


def test_a_stack_dump_is_one_crash_at_the_last_step() -> None:
    _, tr, _, events, _ = parse(M / "hang-stack-dump.log")
    assert tr[-1].step == 344
    crashes = [e for e in events if e.kind is EventKind.CRASHED]
    assert len(crashes) == 1 and crashes[0].step == 344 and "stack dump" in crashes[0].message


def _feed(lines: list[bytes], fmt: str | None = None) -> tuple[LogParser, list[Record], list[Event]]:
    parser = LogParser(fmt)
    items: list[Item] = []
    events: list[Event] = []
    off = 0
    for line in lines:
        parser.feed(line, off, items, events)
        off += len(line) + 1
    parser.flush(items)
    return parser, expand(items), events


LINE = (
    b" [2025-08-01 07:19:37] iteration        %d/    5000 | consumed samples:          128 | "
    b"learning rate: 6.976744E-08 | global batch size:   128 | lm loss: %s | loss scale: 1.0 | "
    b"grad norm: 26.203 | number of skipped iterations:   0 | number of nan iterations:   0 |"
)


def test_ansi_colour_e_notation_and_malformed_lines() -> None:
    lines = [
        b"\x1b[32m" + LINE % (1, b"1.043863E+01") + b"\x1b[0m",
        b"[default3]:" + LINE % (2, b"9.5E+00"),
        LINE % (3, b"not-a-number"),  # the record's shape, unreadable: skipped and counted
        b" iteration 4/ 5000 | lm loss 1.0 | junk |",  # a field without a colon
        b"some unrelated text mentioning iteration 7 of the loop",
        LINE % (5, b"8.25E+00"),
    ]
    parser, recs, _ = _feed(lines)
    assert parser.format == MEGATRON
    assert [(r.step, r.metrics["loss"]) for r in recs] == [(1, 10.43863), (2, 9.5), (5, 8.25)]
    assert parser.stats.skipped == 2


def test_deepspeed_steps_lines_alone_are_records() -> None:
    lines = [b"[default0]:steps: %d loss: %.4f iter time (s): 1.500 samples/sec: 10.000" % (i, 3 - i / 10) for i in range(1, 6)]
    parser, recs, _ = _feed(lines)
    assert parser.format == MEGATRON
    assert [r.step for r in recs] == [1, 2, 3, 4, 5]
    assert recs[0].metrics == {"loss": 2.9, "step_time_ms": 1500.0, "samples_per_second": 10.0}


def test_exiting_program() -> None:
    _, _, events = _feed([LINE % (1, b"1.0E+01"), b"[default0]:[exiting program at iteration 6000] datetime: x"])
    assert [e.kind for e in events if e.kind is not EventKind.MAX_STEPS] == [EventKind.FINISHED]
    _, _, events = _feed([LINE % (1, b"1.0E+01"), b"[exiting program after receiving SIGTERM.] datetime: x"])
    assert [e.kind for e in events if e.kind is not EventKind.MAX_STEPS] == [EventKind.CRASHED]


def test_a_restart_is_a_resume_and_forcing_the_format() -> None:
    parser, recs, events = _feed([LINE % (i, b"5.0E+00") for i in (1, 2, 3, 2, 3)], MEGATRON)
    assert parser.format == MEGATRON and parser.reader is not None
    assert [r.step for r in recs] == [1, 2, 3, 2, 3]
    assert [e.kind for e in events if e.kind is EventKind.RESUMED] == [EventKind.RESUMED]
    assert all(r.kind is Kind.TRAIN for r in recs)


def test_report_names_the_format_and_the_nan_is_critical() -> None:
    r, code = report(M / "slurm-nan-gradnorm.out")
    run = r["runs"][0]
    assert run["format"] == MEGATRON and run["records"] == {"train": 15, "eval": 0}
    assert code == 1 and "loss_nonfinite" in critical(run)


def test_report_on_the_real_nan_run_exits_1() -> None:
    r, code = report(shared("megatron-slurm-nan-gradnorm-dead/1737333.out"))
    assert code == 1 and "loss_nonfinite" in critical(r["runs"][0])
    assert r["runs"][0]["format"] == MEGATRON
