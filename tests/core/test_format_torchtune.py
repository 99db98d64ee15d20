"""torchtune stdout and DiskLogger files (core/formats/torchtune.py)."""

from __future__ import annotations

from helpers import FORMATS, max_steps, parse, report, shared
from sfttop.core.parse import TORCHTUNE, LogParser
from sfttop.core.records import Event, Item, expand

T = FORMATS / "torchtune"


def test_real_stdout_each_step_once() -> None:
    fmt, tr, ev, _, _ = parse(shared("torchtune-stdout-llama32-1b-lora-slurm/a100_g1b6-6076452.out"))
    assert fmt == TORCHTUNE
    assert (len(tr), len(ev)) == (512, 0)  # SOURCES.md: 1024 bar descriptions, 512 epoch|step pairs
    assert [r.step for r in tr] == list(range(1, 513))
    assert tr[0].metrics == {"loss": 1.9749605655670166}
    assert tr[-1].metrics == {"loss": 1.018775463104248}


def test_stdout_excerpt() -> None:
    fmt, tr, _, events, skipped = parse(T / "stdout-excerpt.out")
    assert fmt == TORCHTUNE
    assert skipped == 1  # "Profiler config after instantiation: {'enabled': False}": braces, no metric
    assert [r.step for r in tr] == [*range(1, 20), *range(500, 513)]
    assert tr[1].metrics["loss"] == 2.0130014419555664
    assert max_steps(T / "stdout-excerpt.out") == [512]
    assert events == []


def test_disk_logger_file() -> None:
    fmt, tr, _, _, skipped = parse(T / "log_1733300000.txt")
    assert fmt == TORCHTUNE and skipped == 0
    assert [r.step for r in tr] == list(range(1, 13))
    assert tr[0].metrics == {"loss": 1.8584147098480788, "learning_rate": 5.9999999999999995e-05,
                             "tokens_per_second_per_gpu": 2107.5}
    assert tr[3].metrics["grad_norm"] == 0.84 and tr[3].metrics["peak_memory_alloc"] == 12.9  # tensor(0.8400, ...)


def test_malformed_lines_are_skipped_and_counted() -> None:
    parser = LogParser()
    items: list[Item] = []
    events: list[Event] = []
    lines = [b"1|1|Loss: 2.5:   0%|", b"1|1|Loss: 2.5:   0%|", b"1|2|Loss: nope:   0%|", b"1|3|Loss: 2.4:   1%|",
             b"Step 4 | loss:x lr:y "]
    for i, line in enumerate(lines):
        parser.feed(line, i, items, events)
    parser.flush(items)
    assert parser.format == TORCHTUNE
    assert [r.step for r in expand(items)] == [1, 3]
    assert parser.stats.skipped == 2


def test_report() -> None:
    r, code = report(T / "stdout-excerpt.out")
    assert r["runs"][0]["format"] == TORCHTUNE and code == 0
    r, code = report(T / "log_1733300000.txt")
    assert r["runs"][0]["format"] == TORCHTUNE and code == 0
