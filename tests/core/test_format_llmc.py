"""llm.c's main.log (core/formats/llmc.py), on the real log."""

from __future__ import annotations

from helpers import FORMATS, parse, report, shared
from sfttop.core.parse import LLMC, LogParser
from sfttop.core.records import Event, Item, expand


def test_real_log_counts() -> None:
    fmt, tr, ev, _, skipped = parse(shared("llmc-gpt2-124m-10b/main.log"))
    assert fmt == LLMC and skipped == 0
    assert (len(tr), len(ev)) == (19552, 80)  # SOURCES.md
    assert [r.step for r in tr] == list(range(19552))
    assert tr[0].metrics == {"loss": 11.0116, "learning_rate": 0.000001, "grad_norm": 14.96}
    assert tr[-1].metrics == {"loss": 3.2813, "learning_rate": 0.0, "grad_norm": 0.23}
    # the HellaSwag accuracy printed after a validation joins it
    assert ev[0].step == 0 and ev[0].metrics == {"eval_loss": 11.0095}
    assert ev[-1].step == 19552 and ev[-1].metrics == {"eval_loss": 3.2731, "eval_hellaswag_acc": 0.3054}


def test_fixture_excerpt() -> None:
    fmt, tr, ev, _, skipped = parse(FORMATS / "llmc" / "main.log", budget=512)
    assert fmt == LLMC and skipped == 0
    assert [r.step for r in tr] == [*range(297), 19549, 19550, 19551]
    assert [(r.step, r.metrics) for r in ev] == [
        (0, {"eval_loss": 11.0095}),
        (250, {"eval_loss": 6.1565, "eval_hellaswag_acc": 0.2437}),
        (19552, {"eval_loss": 3.2731, "eval_hellaswag_acc": 0.3054}),
    ]


def test_malformed_lines_are_skipped_and_counted() -> None:
    parser = LogParser()
    items: list[Item] = []
    events: list[Event] = []
    for i, line in enumerate([b"s:0 trl:1.0 lr:0.1 norm:1", b"s:1 trl:x lr:0.1 norm:1", b"s:2 trl:", b"s:3 trl:0.9 lr:0.1 norm:1"]):
        parser.feed(line, i, items, events)
    parser.flush(items)
    assert parser.format == LLMC
    assert [r.step for r in expand(items)] == [0, 3]
    assert parser.stats.skipped == 2


def test_report() -> None:
    r, code = report(FORMATS / "llmc" / "main.log")
    assert r["runs"][0]["format"] == LLMC and code == 0
