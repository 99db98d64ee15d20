"""llm.c's main.log (core/formats/llmc.py), on the real log."""

from __future__ import annotations

import pytest

from helpers import FORMATS, parse, report, shared
from sfttop.core.formats import base, llmc
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


def _read_chunks(data: bytes, bulk: bool, monkeypatch: pytest.MonkeyPatch, per: int = 7, slice_: int = 0) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]], tuple[int, ...], int]:
    """Records, events and counters of ``data`` read ``per`` lines a chunk, runs of train lines in
    bulk (``Reader.feed_rows``, ``slice_`` lines matched at a time if given) or (``bulk`` false)
    line by line; and the lines ``feed`` read."""
    fed = [0]
    feed = llmc.Reader.feed

    def counted(self: llmc.Reader, seg: bytes, offset: int, out_records: list[Item], out_events: list[Event]) -> bool:
        fed[0] += 1
        return feed(self, seg, offset, out_records, out_events)

    lines = data.splitlines(keepends=True)
    with monkeypatch.context() as m:
        m.setattr(llmc.Reader, "feed", counted)
        if slice_:
            m.setattr(base, "ROWS_SLICE", slice_)
        if not bulk:
            m.setattr(llmc.Reader, "rows_in_bulk", lambda self: False)
        parser = LogParser()
        items: list[Item] = []
        events: list[Event] = []
        pos = 0
        for i in range(0, len(lines), per):
            chunk = b"".join(lines[i : i + per])
            parser.feed_chunk(chunk, pos, items, events)
            pos += len(chunk)
        parser.flush(items)
    recs = [(r.kind, r.step, repr(r.metrics), r.offset) for r in expand(items)]  # repr: nan == nan
    evs = [(e.kind, e.message, e.offset, e.step, e.total) for e in events]
    st = parser.stats
    return recs, evs, (st.lines, st.records, st.skipped), fed[0]


def test_train_lines_read_in_bulk_as_line_by_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """A chunk's train lines matched in one pass give what reading each line gives: evaluations
    between them, values orjson would read otherwise than float() (``-0``, ``01.5``, ``1e400``),
    unreadable lines, a restart, a line of another shape."""
    lines = [b"s:%d trl:%r lr:%r norm:%.2f" % (s, 3 - s / 100, 1e-4 * s, 1 + s / 1000) for s in range(80)]
    lines[11:11] = [b"s:10 tel:2.9", b"s:10 eval:0.25"]
    lines[14] = b"s:12 trl:nan lr:0.1 norm:1.0"
    lines[25] = b"s:23 trl:-0 lr:-0.0 norm:0"  # (not in the chunk of the 1e400)
    lines[16] = b"s:14 trl:01.5 lr:0.1 norm:1.0"
    lines[17] = b"s:15 trl:1e400 lr:1E-3 norm:1.5e+00"
    lines[18] = b"s:16 trl:word lr:0.1 norm:1.0"
    lines[19] = b"s:17 trl:1.0 lr:0.1"
    lines[20] = b"s:18 trl:1.0 lr:0.1 norm:1.0 "
    lines[21] = b"s:19 trl:1.0 lr:0.1 norm:1.0 extra:2"
    lines[22] = b"s:20 trl:1.0 lr:0.1 norm:1.0\tx"
    lines[40] = b"s:5 trl:2.0 lr:0.1 norm:1.0"  # steps go back: a restart
    lines[41] = b"s:5 trl:2.0 lr:0.1 norm:1.0"
    lines[60] = b"s:58 tel:2.5"
    lines[75] = b"not llm.c's line"
    data = b"\n".join(lines) + b"\n"
    *bulk, fed = _read_chunks(data, True, monkeypatch)
    *one_by_one, fed_all = _read_chunks(data, False, monkeypatch)
    assert bulk == one_by_one
    assert fed_all == len(lines) and fed < fed_all / 2
    # matched 3 lines at a time: runs cut at slices, an other line found after a first slice
    *sliced, fed_sliced = _read_chunks(data, True, monkeypatch, per=13, slice_=3)
    assert sliced == bulk and fed_sliced < fed_all / 2
    recs, evs, (_, _, skipped) = bulk
    assert (15, "{'loss': inf, 'learning_rate': 0.001, 'grad_norm': 1.5}") in [(s, m) for _, s, m, _ in recs]
    assert skipped == 2 and any(e[3] == 5 for e in evs)  # the word, the tab


def test_real_log_read_in_bulk_as_line_by_line(monkeypatch: pytest.MonkeyPatch) -> None:
    data = (FORMATS / "llmc" / "main.log").read_bytes()
    *bulk, fed = _read_chunks(data, True, monkeypatch)
    *one_by_one, fed_all = _read_chunks(data, False, monkeypatch)
    assert bulk == one_by_one and fed < fed_all / 2
    # in one chunk, the first line names the format and the rest is read in bulk all the same
    *whole, fed = _read_chunks(data, True, monkeypatch, per=len(data))
    assert whole == bulk and fed <= 1 + data.count(b" tel:") + data.count(b" eval:")
