"""The parsers on the exact line shapes each framework prints (research note, Part A)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import parse_lines
from sfttop.core.metrics import canonical
from sfttop.core.parse import LogParser, parse_duration, parse_object
from sfttop.core.records import EventKind, Kind, expand

TF4 = b"{'loss': 2.0905, 'grad_norm': 1.9506487846374512, 'learning_rate': 0.0005, 'epoch': 0.44}"
TF5 = (
    b"{'loss': '1.234', 'grad_norm': '0.8765', 'learning_rate': '2e-05', 'entropy': '1.1', "
    b"'num_tokens': '1.235e+05', 'mean_token_accuracy': '0.6512', 'epoch': '0.01235'}"
)


def test_transformers_4_line() -> None:
    _, recs, _ = parse_lines([TF4])
    (r,) = recs
    assert r.kind is Kind.TRAIN
    assert r.metrics == {"loss": 2.0905, "grad_norm": 1.9506487846374512, "learning_rate": 0.0005}
    assert r.epoch == 0.44
    assert r.step_inferred


def test_transformers_5_quoted_floats() -> None:
    _, recs, _ = parse_lines([TF5])
    (r,) = recs
    assert r.metrics["loss"] == 1.234
    assert r.metrics["num_tokens"] == 123500.0
    assert r.metrics["mean_token_accuracy"] == 0.6512
    assert r.epoch == 0.01235


@pytest.mark.parametrize(
    "line",
    [
        b"{'loss': nan, 'grad_norm': inf, 'learning_rate': 1e-05, 'epoch': 0.4}",
        b"{'loss': 'nan', 'grad_norm': 'inf', 'learning_rate': '1e-05', 'epoch': '0.4'}",
        b'{"loss": NaN, "grad_norm": Infinity, "learning_rate": 1e-05, "epoch": 0.4}',
    ],
)
def test_nonfinite_values_in_every_spelling(line: bytes) -> None:
    _, recs, _ = parse_lines([line])
    (r,) = recs
    assert math.isnan(r.metrics["loss"])
    assert r.metrics["grad_norm"] == math.inf


def test_eval_and_summary_are_told_apart() -> None:
    lines = [
        TF4,
        b"{'eval_loss': 1.622266411781311, 'eval_runtime': 311.107, 'eval_samples_per_second': 13.442, "
        b"'eval_steps_per_second': 3.362, 'epoch': 0.44}",
        b"{'train_runtime': 1273.9239, 'train_samples_per_second': 2.826, 'train_steps_per_second': 0.188, "
        b"'train_loss': 0.19847503900527955, 'epoch': 20.0}",
    ]
    parser, recs, evs = parse_lines(lines)
    assert [r.kind for r in recs] == [Kind.TRAIN, Kind.EVAL, Kind.SUMMARY]
    assert recs[1].step == recs[0].step  # an eval belongs to the step just logged
    assert any(e.kind is EventKind.FINISHED for e in evs)
    assert parser.finished


def test_record_buried_in_tqdm_and_ansi_noise() -> None:
    noisy = (
        b" 23%|\xe2\x96\x88\xe2\x96\x88\xe2\x96\x8e       | 14/60 [00:00<00:00, 63.02it/s]"
        + b"\x1b[A\x1b[32m"
        + TF4
    )
    parser, recs, _ = parse_lines([b" 10%|#         | 6/60 [00:01<00:09,  5.9it/s]", noisy])
    assert len(recs) == 1 and recs[0].metrics["loss"] == 2.0905
    assert parser.progress_total == 60


def test_launcher_prefixes() -> None:
    _, recs, _ = parse_lines([b"[default0]:" + TF4, b"[rank0]: " + TF4.replace(b"0.44", b"0.88")])
    assert len(recs) == 2


def test_hostile_values_are_never_evaluated(tmp_path: object) -> None:
    lines = [
        b"{'loss': __import__('os').system('touch /tmp/sfttop-pwned'), 'epoch': 0.6}",
        b"{'loss': tensor(0.3512, device='cuda:0'), 'epoch': 0.5}",
        b"{'loss': " + b"[" * 5000 + b"]" * 5000 + b"}",
        b"{'loss': 0.5, 'grad_norm': \xff\xfe\xfd, 'epoch': 0.1}",
    ]
    parser, recs, _ = parse_lines(lines)
    assert recs == []
    assert parser.stats.skipped == 4


def test_absurd_number_is_infinite_not_a_crash() -> None:
    _, recs, _ = parse_lines([b"{'loss': " + b"9" * 5000 + b", 'epoch': 0.3}"])
    assert recs[0].metrics["loss"] == math.inf


def test_prose_with_braces_is_not_a_record() -> None:
    parser, recs, _ = parse_lines([b"Using {model} with config {}", b"warning: set {x} to y"])
    assert recs == [] and parser.stats.skipped == 0


def test_escape_codes_in_keys_do_not_survive() -> None:
    _, recs, _ = parse_lines([b"{'lo\x1b]0;evil\x07ss': 0.4, 'loss': 0.5, 'epoch': 0.2}"])
    for k in recs[0].metrics:
        assert "\x1b" not in k and "\x07" not in k


def test_llamafactory_jsonl() -> None:
    line = (
        b'{"current_steps": 5, "total_steps": 240, "loss": 2.0905, "lr": 0.0005, "epoch": 0.4444444444444444, '
        b'"percentage": 2.08, "elapsed_time": "0:00:25", "remaining_time": "0:20:18"}'
    )
    parser, recs, _ = parse_lines([line])
    (r,) = recs
    assert r.step == 5 and not r.step_inferred
    assert r.metrics["learning_rate"] == 0.0005
    assert "percentage" not in r.metrics
    assert parser.format == "llamafactory-jsonl"
    assert parser.progress_total == 240 and parser.eta_seconds == 20 * 60 + 18


def test_ms_swift_jsonl() -> None:
    line = (
        b'{"loss": 1.461, "grad_norm": 1.705, "learning_rate": 1e-05, "token_acc": 0.6399, "epoch": 0.016, '
        b'"global_step/max_steps": "12/189", "percentage": "6.35%", "elapsed_time": "2m 41s", '
        b'"remaining_time": "8h 25m 20s", "memory(GiB)": 67.95, "train_speed(s/it)": 161.3}'
    )
    parser, recs, _ = parse_lines([line])
    (r,) = recs
    assert r.step == 12
    assert r.metrics["mean_token_accuracy"] == 0.6399
    assert parser.format == "ms-swift-jsonl"
    assert parser.progress_total == 189
    assert parser.eta_seconds == 8 * 3600 + 25 * 60 + 20


def test_step_less_records_use_logging_interval_from_the_bar() -> None:
    # Dict lines sit in stdout's buffer while the bar goes straight to stderr: a burst of
    # three records arrives when the bar is at 30, so they were logged every 10 steps.
    lines = [b" 50%|#####     | 30/60 [00:03<00:03,  9.9it/s]"]
    lines += [b"{'loss': %.1f, 'epoch': %.2f}" % (3 - i, i / 6) for i in (1, 2, 3)]
    _, recs, _ = parse_lines(lines)
    assert [r.step for r in recs] == [10, 20, 30]


def test_resumed_stdout_run_relogs_the_same_steps() -> None:
    parser = LogParser()
    parser.interval = 2
    lines = [b"{'loss': %.2f, 'epoch': '%.4g'}" % (3 - i / 10, i / 30) for i in range(1, 13)]
    lines += [b"{'loss': %.2f, 'epoch': '%.4g'}" % (2 - i / 10, i / 30) for i in range(11, 31)]
    recs: list = []
    evs: list = []
    for i, ln in enumerate(lines):
        parser.feed(ln, i, recs, evs)
    parser.flush(recs)
    steps = [r.step for r in recs]
    assert len(set(steps)) == 30 and max(steps) == 60
    assert any(e.kind is EventKind.RESUMED for e in evs)


def test_traceback_is_a_crash_with_its_error_line() -> None:
    lines = [
        TF4,
        b"Traceback (most recent call last):",
        b'  File "train.py", line 10, in <module>',
        b"    trainer.train()",
        b"torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB",
    ]
    _, _, evs = parse_lines(lines)
    crash = [e for e in evs if e.kind is EventKind.CRASHED]
    assert len(crash) == 1 and crash[0].message.startswith("torch.OutOfMemoryError: CUDA out of memory")


def test_nccl_error_without_traceback() -> None:
    _, _, evs = parse_lines([b"[rank3]: NCCL error in: ProcessGroupNCCL.cpp:1269, unhandled system error"])
    assert [e.kind for e in evs] == [EventKind.CRASHED]


def test_max_steps_banner() -> None:
    lines = [b"[INFO|trainer.py:2417] 2025-05-28 16:36:49,102 >>   Total optimization steps = 1,240"]
    _, _, evs = parse_lines(lines)
    assert evs[0].kind is EventKind.MAX_STEPS and evs[0].total == 1240


@pytest.mark.parametrize(
    ("raw", "name"),
    [
        ("lr", "learning_rate"),
        ("token_acc", "mean_token_accuracy"),
        ("eval/loss", "eval_loss"),
        ("train/grad_norm", "grad_norm"),
        ("eval_token_acc", "eval_mean_token_accuracy"),
        ("eval/token_acc", "eval_mean_token_accuracy"),
        ("num_input_tokens_seen", "num_tokens"),
        ("loss", "loss"),
    ],
)
def test_metric_vocabulary(raw: str, name: str) -> None:
    assert canonical(raw) == name


def test_durations() -> None:
    assert parse_duration("0:20:18") == 1218
    assert parse_duration("1m 42s") == 102
    assert parse_duration("02:01") == 121


def test_parse_object_rejects_non_dicts() -> None:
    assert parse_object(b"[1, 2]") is None
    assert parse_object(b"{'a': 1") is None


def test_a_stray_record_with_an_old_epoch_is_not_a_resume() -> None:
    # A corrupted or foreign line whose epoch is in the past, followed by records that carry on
    # where the run was: every record counts (no bar went back, the next record is off the grid).
    lines = [b"{'loss': 1.0, 'epoch': %.2f}" % (i / 100) for i in range(1, 51)]
    lines += [b"{'loss': 0.4, 'epoch': 0.2}", b"{'loss': 0.3, 'epoch': 0.3}"]
    lines += [b"{'loss': 1.0, 'epoch': %.2f}" % (i / 100) for i in range(51, 61)]
    _, recs, evs = parse_lines(lines)
    assert len({r.step for r in recs}) == 62
    assert not any(e.kind is EventKind.RESUMED for e in evs)


def test_a_restarted_progress_bar_confirms_a_resume_at_once() -> None:
    parser = LogParser()
    parser.interval = 1
    recs: list = []
    evs: list = []
    lines = [b" 10%|#         | 10/100 [00:10<01:30,  1.0it/s]"]
    lines += [b"{'loss': 1.0, 'epoch': %.2f}" % (i / 100) for i in range(1, 11)]
    lines += [b"  0%|          | 0/100 [00:00<?, ?it/s]", b"{'loss': 0.9, 'epoch': 0.06}"]
    for i, ln in enumerate(lines):
        parser.feed(ln, i, recs, evs)
    parser.flush(recs)
    assert [r.step for r in recs][-1] == 6
    assert any(e.kind is EventKind.RESUMED for e in evs)


def test_record_followed_by_redraws_before_its_newline() -> None:
    # stdout flushed right after the dict's '}' and stderr's bars landed before its '\n'
    from sfttop.core.parse import LogParser

    p = LogParser()
    p.interval = 1
    recs: list = []
    data = (
        b"{'loss': 1.5, 'epoch': 0.1}\n"
        b"{'loss': 1.4, 'epoch': 0.2}\r  2%|#  | 31/1500 [00:31<25:00, 1.0it/s]\r  2%|#  | 32/1500 [00:32<25:00]\n"
        b"{'loss': 1.3, 'epoch': 0.3}\n"
    )
    p.feed_chunk(data, 0, recs, [])
    p.flush(recs)
    assert [r.metrics["loss"] for r in expand(recs)] == [1.5, 1.4, 1.3]
    assert p.progress_step == 32


_NUMBERISH = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).flatmap(
        lambda x: st.sampled_from([f"{x:.4g}", repr(x), f"{x:e}", f"{x:.0f}" if math.isfinite(x) else str(x)])
    ),
    st.integers(-(10**30), 10**30).map(str),
    st.sampled_from(["-0", "+1", ".5", "1.", "01", "1_0", " 2", "3 ", "1,5", "true", "null", "[1]", "Infinity", "-inf"]),
    st.text(alphabet="0123456789.-+eE, ", max_size=8),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_NUMBERISH, min_size=1, max_size=12))
def test_a_column_of_strings_reads_as_float_would(strs: list[str]) -> None:
    # HF 5.x '%.4g' strings go through orjson in bulk: the doubles must be float()'s, bit for bit.
    from array import array

    from sfttop.core.parse import _column

    got = _column(tuple(strs))
    try:
        want = array("d", map(float, strs))
    except ValueError:
        want = None
    if max(map(len, strs)) >= 40 or "_" in "".join(strs):
        want = None
    if got is None or want is None:
        assert got is None and want is None
    else:
        assert [v.hex() for v in got] == [v.hex() for v in want]


_PIECES = st.sampled_from(
    [
        "",
        "   ",
        "\t",
        " 12%|#2        | 60/500 [00:10<01:20,  5.40it/s]",
        "100%|##########| 500/500 [01:30<00:00,  5.50it/s]",
        "  3%|3         | 7/250 [00:01<00:40,  6.1it/s]",  # an eval bar (smaller total)
        " 40%|####      | 2/5 [00:00<00:00, 30.0it/s]",
        "Map:  50%|#####     | 26000/52000 [00:02<00:02, 9876.54 examples/s]",  # a described bar
        "{'loss': 0.5, 'grad_norm': 1.0, 'learning_rate': 1e-05, 'epoch': 0.1}",
        " 12%|#2        | 61/500 [00:10<01:20,  5.40it/s]{'loss': 0.4, 'epoch': 0.2}",
        "Saving model checkpoint to out/checkpoint-60",
        "12%|",
        "7%| 3/",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(_PIECES, max_size=8).map("\r".join), min_size=1, max_size=6))
def test_redraw_lines_read_the_same_on_the_fast_path(lines: list[str]) -> None:
    # A line of nothing but bars and blanks skips splitting; what it leaves must be exactly
    # what the piece-by-piece path leaves.
    import re

    import sfttop.core.parse as parse_mod

    data = "".join("\r" + line + "\n" for line in lines).encode()

    def read() -> tuple[object, ...]:
        p = LogParser()
        recs: list[object] = []
        evs: list[object] = []
        p.feed_chunk(data, 0, recs, evs)  # type: ignore[arg-type]
        p.flush(recs, final=True)  # type: ignore[arg-type]
        return (
            [(r.kind, r.step, r.metrics, r.epoch, r.offset) for r in expand(recs)],  # type: ignore[arg-type]
            [(e.kind, e.message, e.offset) for e in evs],  # type: ignore[attr-defined]
            p.progress_step,
            p.progress_total,
            p.train_total,
            p.bar_step,
            p.eta_seconds,
            p.stats.lines,
            p.stats.skipped,
        )

    fast = read()
    real = parse_mod._BAR_OR_EMPTY
    parse_mod._BAR_OR_EMPTY = re.compile(rb"(?!x)x")  # never: every line piece by piece
    try:
        slow = read()
    finally:
        parse_mod._BAR_OR_EMPTY = real
    assert fast == slow


def _glued_log(resume: bool) -> list[bytes]:
    """HF records printed right after a tqdm redraw (print(), no clearing): the dict glued to
    the bar, as in many captured logs; steps every 5, an eval glued to its own shorter bar,
    and optionally a resume whose new process's bar starts again at step 50."""
    lines = []
    total = 400
    steps = list(range(5, 205, 5))
    if resume:
        steps += list(range(55, 105, 5))
    for i, step in enumerate(steps):
        bar = b"\r%3d%%|##        | %d/%d [00:%02d<01:00, 4.99it/s]" % (100 * step // total, step, total, i % 60)
        rec = {"loss": round(2.0 - step / 300 + (i % 3) * 0.01, 4), "grad_norm": 1.0 + (i % 5) / 10, "learning_rate": 2e-05, "epoch": round(step / 100, 2)}
        lines.append(bar + repr(rec).encode() + b"\n")
        if step % 50 == 0:
            lines.append(b"\r 50%|#####     | 4/8 [00:01<00:01, 3.1it/s]" + repr({"eval_loss": 1.5, "epoch": round(step / 100, 2)}).encode() + b"\n")
    return lines


@pytest.mark.parametrize("resume", [False, True])
def test_records_glued_to_bars_read_in_bulk_are_the_record_by_record_ones(resume: bool) -> None:
    """A chunk of bar-glued records (the live path, a poll's worth) is converted in one batch
    once the logging interval is known; a bar that went back (a resume) is read line by line.
    Records, events and progress as reading each line on its own."""
    lines = _glued_log(resume)

    def read(bulk: bool) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]], tuple[object, ...]]:
        p = LogParser()
        recs: list = []
        evs: list = []
        pos = 0
        for k, line in enumerate(lines):
            if k < 6 or not bulk:  # (the first records teach the parser its logging interval)
                p.feed_chunk(line, pos, recs, evs)
                pos += len(line)
        if bulk:
            p.feed_chunk(b"".join(lines[6:]), pos, recs, evs)
        p.flush(recs, final=True)
        out = [(r.kind, r.step, sorted(r.metrics.items()), r.epoch) for r in expand(recs)]
        return out, [(e.kind, e.step) for e in evs], (p.progress_step, p.progress_total, p.interval)

    one_by_one, events, progress = read(bulk=False)
    assert read(bulk=True) == (one_by_one, events, progress)
    assert progress[2] == 5 and progress[0] == (100 if resume else 200)
    assert len([r for r in one_by_one if r[0] is Kind.TRAIN]) == (50 if resume else 40)
    assert (EventKind.RESUMED in [e[0] for e in events]) == resume
