"""The line-format registry (core/formats) and --log-format."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from helpers import FORMATS, ROOT, read_all, report
from sfttop.core import formats
from sfttop.core.parse import INPUT_FORMATS, LogParser
from sfttop.core.records import Event, Item, expand

README = ROOT / "README.md"

# One line of each format; every other format's detector must refuse it.
SAMPLES = {
    "megatron": b" [2026-04-15 11:19:02] iteration        1/     500 | lm loss: 1.2E+01 | grad norm: 11.9 |",
    "nanogpt": b"iter 10: loss 4.5735, time 267.36ms, mfu 8.92%",
    "nanochat": b"step 00764/05742 (13.31%) | loss: 3.02 | lrm: 1.00 | dt: 1033.49ms | tok/sec: 22,159",
    "llmc": b"s:12 trl:9.87 lr:0.000010 norm:3.21",
    "torchtune": b"1|12|Loss: 1.9749605655670166:   2%|",
    "lightning-csv": b"epoch,step,train_loss_step,val_loss",
    "keras-csv": b"epoch,accuracy,learning_rate,loss,val_accuracy,val_loss",
    "wandb-csv": b"_step,_runtime,train/loss,train/grad_norm,_timestamp,train/global_step",
}


def test_every_format_is_registered_once_with_a_description() -> None:
    names = [f.name for f in formats.FORMATS]
    assert sorted(names) == sorted(SAMPLES) and len(set(names)) == len(names)
    assert all(len(f.description) > 40 for f in formats.FORMATS)
    assert set(names) <= set(INPUT_FORMATS)


def test_detection_is_unambiguous() -> None:
    for name, line in SAMPLES.items():
        assert [f.name for f in formats.FORMATS if f.detect(line)] == [name]
    hf = b"{'loss': 2.0905, 'grad_norm': 1.95, 'learning_rate': 0.0005, 'epoch': 0.44}"
    assert formats.detect(hf) is None
    assert formats.detect(b" 24/240 [02:01<15:46,  4.38s/it]") is None


def test_hf_lines_are_not_taken_by_a_line_format() -> None:
    parser = LogParser()
    items: list[Item] = []
    events: list[Event] = []
    parser.feed(b"Step 3 | saving", 0, items, events)
    parser.feed(b"{'loss': 2.0905, 'grad_norm': 1.95, 'learning_rate': 0.0005, 'epoch': 0.44}", 20, items, events)
    parser.flush(items)
    assert parser.format == "unknown" and parser.reader is None and len(items) == 1


def test_every_format_is_in_the_readme_table() -> None:
    text = README.read_text()
    for f in formats.FORMATS:  # the registry's description is the README's row, word for word
        assert f"| `{f.name}` | {f.description.replace('|', chr(92) + '|')} |" in text, f.name


def test_log_format_overrides_detection() -> None:
    # a llm.c log read as nanoGPT has no nanoGPT line: nothing, not a misread (and a log nothing
    # was read from is an error, never a clean report)
    p = subprocess.run(
        [sys.executable, "-m", "sfttop", "--report", "--format", "json", "--log-format", "nanogpt",
         str(FORMATS / "llmc" / "main.log")],
        capture_output=True, text=True, timeout=120,
    )
    assert p.returncode == 2 and not p.stdout
    assert "no records recognised" in p.stderr and p.stderr.count("\n") == 1
    r, code = report(FORMATS / "llmc" / "main.log", "--log-format", "llmc")
    assert r["runs"][0]["format"] == "llmc" and r["runs"][0]["records"]["train"] > 0 and code == 0


def test_unknown_log_format_is_a_one_line_usage_error() -> None:
    p = subprocess.run([sys.executable, "-m", "sfttop", "--report", "--log-format", "nope", "x.log"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 2
    assert p.stderr.count("\n") == 1 and "unknown --log-format 'nope'" in p.stderr and "megatron" in p.stderr


def _key(path: Path, budget: int) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]], int]:
    parser, _, records, events = read_all(str(path), budget=budget, use_state=False)
    recs = [(r.kind, r.step, repr(sorted(r.metrics.items())), r.offset) for r in records]
    evs = [(e.kind, e.step, e.total, e.message) for e in events]
    return recs, evs, parser.stats.skipped


@pytest.mark.parametrize(
    "path",
    sorted(p for d in ("megatron", "nanogpt", "nanochat", "llmc", "torchtune") for p in (FORMATS / d).iterdir()),
    ids=lambda p: f"{p.parent.name}/{p.name}",
)
def test_the_same_records_however_the_file_is_read(path: Path) -> None:
    # A tailed log arrives in pieces: held evals, DeepSpeed's held steps line and runs waiting to
    # become blocks must come out the same as from one read of the whole file.
    assert _key(path, 300) == _key(path, 1 << 20)


HOSTILE = {
    "megatron": b" iteration 1/ 10 |" + b"".join(b" k%d: 1.0 |" % i for i in range(1000)),
    "nanochat": b"step 00001/00010 (10.00%) " + b"".join(b"| k%d: 1.0 " % i for i in range(1000)),
    "llmc": b"s:1 " + b" ".join(b"k%d:1.0" % i for i in range(1000)),
    "torchtune": b"Step 1 | " + b" ".join(b"k%d:1.0" % i for i in range(1000)),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_a_line_of_a_thousand_fields_is_skipped_not_a_thousand_series(name: str) -> None:
    parser = LogParser(name)
    items: list[Item] = []
    events: list[Event] = []
    parser.feed(HOSTILE[name], 0, items, events)
    parser.flush(items)
    assert items == [] and parser.stats.skipped == 1


def test_escape_sequences_in_keys_never_reach_a_metric_name() -> None:
    parser = LogParser("megatron")
    items: list[Item] = []
    events: list[Event] = []
    # ESC sequences are stripped from the line; a lone C1/C0 control in a key is dropped from the name
    parser.feed(b" iteration 1/ 10 | lm loss: 2.0 | \x9b31mevil\x07: 1.0 |", 0, items, events)
    parser.flush(items)
    (rec,) = expand(items)
    assert rec.metrics["loss"] == 2.0
    assert all(ch.isprintable() for name in rec.metrics for ch in name)


@pytest.mark.parametrize(
    ("line", "eta"),
    [
        (b"step 05740/05742 (99.97%) | loss: 2.57 | lrm: 0.00 | dt: 44600.00ms | tok/sec: 9,215 | mfu: 16.05 | "
         b"epoch: 1 | total time: 4380.09m | eta: 1.5m", 90.0),
        (b"1|1|Loss: 1.9749605655670166:   0%|          | 1/512 [00:28<4:02:59, 28.53s/it]", 4 * 3600 + 2 * 60 + 59),
    ],
)
def test_time_left_as_the_log_tells_it(line: bytes, eta: float) -> None:
    parser = LogParser()
    items: list[Item] = []
    events: list[Event] = []
    parser.feed(line, 0, items, events)
    parser.flush(items)
    assert parser.eta_seconds == eta
