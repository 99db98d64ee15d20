"""torchtune stdout and DiskLogger files (core/formats/torchtune.py)."""

from __future__ import annotations

import pytest

from helpers import FORMATS, max_steps, parse, report, shared
from sfttop.core.formats import torchtune
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


def _read(data: bytes, whole: bool, monkeypatch: object) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]], tuple[int, ...]]:
    """Records, events and counters of ``data`` read a few chunks at a time, lines of redraws
    read whole or (``whole`` false) piece by piece."""
    import pytest

    from sfttop.core.formats import torchtune

    mp = monkeypatch
    assert isinstance(mp, pytest.MonkeyPatch)
    with mp.context() as m:
        if not whole:
            m.setattr(torchtune.Reader, "feed_redraws", lambda *a: 0)
        parser = LogParser()
        items: list[Item] = []
        events: list[Event] = []
        pos = 0
        for chunk in data.split(b"\n\n"):  # a few reads, as the tailer hands them over
            parser.feed_chunk(chunk + b"\n", pos, items, events)
            pos += len(chunk) + 2
        parser.flush(items)
    recs = [(r.kind, r.step, repr(r.metrics), r.offset) for r in expand(items)]  # repr: nan == nan
    evs = [(e.kind, e.message, e.offset, e.step, e.total) for e in events]
    st = parser.stats
    return recs, evs, (st.lines, st.records, st.skipped)


def test_redraw_lines_read_whole_as_piece_by_piece(monkeypatch: object) -> None:
    """A line of redraws read in one go (``Reader.feed_redraws``) gives what reading its pieces
    one by one gives: steps once, restarts, a new total, bad losses, other text in between."""
    def bar(e: int, s: int, loss: str, n: int, total: int = 40) -> bytes:
        return b"%d|%d|Loss: %s:  %3d%%|#   | %d/%d [00:28<4:02:59, 28.53s/it]" % (e, s, loss.encode(), s, n, total)

    lines = [
        b"\r".join([bar(1, 1, "2.5", 1), bar(1, 1, "2.5", 2), bar(1, 2, "2.4", 2)]),
        b"\r" + b"\r".join([bar(1, 2, "2.4", 3), *(bar(1, s, f"{2.4 - s / 100!r}", s + k) for s in range(3, 12) for k in (0, 1))]),
        b"INFO: some message",
        b"\r".join([bar(1, s, "1.5e-1", s) for s in range(12, 20)]),
        b"\r".join([bar(2, s, "2.0", s) for s in (5, 6, 7, 8, 9)]),  # steps go back: a new attempt
        b"\r".join([bar(2, s, "nan" if s == 11 else "1.25", s) for s in range(10, 15)]),  # not a JSON number
        b"\r".join([bar(2, s, "1.0", s, 80) for s in range(15, 20)]),  # a new total
        b"\r".join([bar(2, s, "1.0", s, 80) for s in range(20, 26)] + [b"Step 26 | loss:1.0 lr:0.1 "]),
        b"\r".join([bar(2, s, "0.5", s, 80) for s in range(27, 40)]),
    ]
    data = b"\n".join(lines[:4]) + b"\n\n" + b"\n".join(lines[4:]) + b"\n"
    whole = _read(data, True, monkeypatch)
    assert whole == _read(data, False, monkeypatch)
    recs, evs, _ = whole
    assert [s for _, s, _, _ in recs][:19] == list(range(1, 20))
    assert any("5" in str(e[1]) for e in evs)  # the restart at step 5


def test_real_stdout_read_whole_as_piece_by_piece(monkeypatch: object) -> None:
    for path in (shared("torchtune-stdout-llama32-1b-lora-slurm/a100_g1b6-6076452.out"), T / "stdout-excerpt.out"):
        data = path.read_bytes()
        assert _read(data, True, monkeypatch) == _read(data, False, monkeypatch)


def test_disk_logger_lines_of_numbers_read_as_any_line(monkeypatch: object) -> None:
    """A DiskLogger line of the shape read last (one match of that shape's regex) gives what
    splitting it into pairs gives."""
    import pytest

    from sfttop.core.formats import torchtune

    assert isinstance(monkeypatch, pytest.MonkeyPatch)
    lines = [b"Step %d | loss:%r lr:%r tokens_per_second_per_gpu:%r " % (s, 2 - s / 50, 1e-4 * s, 2100.5 + s)
             for s in range(1, 30)]
    lines[7] = b"Step 8 | loss:1.8 lr:1e-05 grad_norm:tensor(0.84, device='cuda:0') "
    lines[9] = b"Step 10 | loss:nan lr:1e-05 "
    lines[12] = b"Step 13 | loss:1.7 lr:abc "
    lines[14] = b"Step 15 | " + b" ".join(b"k%d:1" % i for i in range(70))  # too many fields
    lines[16] = b"[rank0]: Step 17 | loss:1.6\tlr:1e-05"
    lines[20] = b"Step 5 | loss:1.9 lr:1E+2 train/x:-0.5 "  # steps go back
    lines[22] = b"Step 7 | loss:1e400 "
    lines[24] = b"Step 25 |  loss:1.5   lr:2e-05 tokens_per_second_per_gpu:3.5"
    lines[25] = b"Step 26 | loss:1.5 lr:2e-05 tokens_per_second_per_gpu:3.5 extra:1"
    lines[26] = b"Step 27 | loss:1.5 lr:2e-05 tokens_per_second_per_gpu:3.5,"
    data = b"\n".join(lines) + b"\n" + (FORMATS / "torchtune" / "log_1733300000.txt").read_bytes()
    fast = _read(data, True, monkeypatch)
    with monkeypatch.context() as m:
        m.setattr(torchtune.Reader, "_learn", lambda *a: None)
        assert fast == _read(data, True, monkeypatch)
    assert len(fast[0]) > 30


def test_disk_logger_lines_read_in_bulk_as_line_by_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """A chunk of lines of the shape read last, matched in one pass (``Reader.feed_rows``),
    gives what reading each line gives: values orjson would read otherwise than float()
    (``-0``, ``01.5``, ``1e400``), other shapes and prefixes, a restart, a bar line."""
    fed = [0]
    feed = torchtune.Reader.feed

    def counted(self: torchtune.Reader, seg: bytes, offset: int, out_records: list[Item], out_events: list[Event]) -> bool:
        fed[0] += 1
        return feed(self, seg, offset, out_records, out_events)

    lines = [b"Step %d | loss:%r lr:%r tokens_per_second_per_gpu:%r " % (s, 2 - s / 50, 1e-4 * s, 2100.5 + s)
             for s in range(1, 90)]
    lines[8] = b"Step 9 | loss:-0 lr:-0.0 tokens_per_second_per_gpu:0 "
    lines[36] = b"Step 37 | loss:01.5 lr:0.1 tokens_per_second_per_gpu:1.0 "
    lines[24] = b"Step 25 | loss:1e400 lr:1E-3 tokens_per_second_per_gpu:1.5e+00 "  # (a chunk without -0)
    lines[14] = b"Step 15 | loss:nan lr:0.1 tokens_per_second_per_gpu:1.0 "
    lines[16] = b"0: [default0]: Step 17 | loss:1.0 lr:0.1 tokens_per_second_per_gpu:1.0 "
    lines[18] = b"\x0cStep 19 | loss:1.0 lr:0.1 tokens_per_second_per_gpu:1.0 "
    lines[20] = b"Step 21 | loss:1.0 lr:0.1 tokens_per_second_per_gpu:1.0 grad_norm:tensor(0.8, device='cuda:0') "
    lines[30] = b"Step 31 | lr:0.1 loss:1.0 tokens_per_second_per_gpu:1.0 "  # another order: a new shape
    lines[50] = b"Step 5 | loss:1.0 lr:0.1 tokens_per_second_per_gpu:1.0 "  # steps go back
    lines[70] = b"1|71|Loss: 1.5:  1%|#   | 2/300 [00:28<4:02:59, 28.53s/it]"
    lines[80] = b"not torchtune's line"
    data = b"\n\n".join(b"\n".join(lines[i : i + 7]) for i in range(0, len(lines), 7))  # chunks of 7
    runs = []
    for bulk in (True, False):
        fed[0] = 0
        with monkeypatch.context() as m:
            m.setattr(torchtune.Reader, "feed", counted)
            if not bulk:
                m.setattr(torchtune.Reader, "rows_in_bulk", lambda self: False)
            runs.append((_read(data, True, monkeypatch), fed[0]))
    (got, fed_bulk), (want, fed_all) = runs
    assert got == want
    assert fed_all == len(lines) and fed_bulk < fed_all / 2
    recs, evs, _ = got
    assert (25, "{'loss': inf, 'learning_rate': 0.001, 'tokens_per_second_per_gpu': 1.5}") in [(s, m) for _, s, m, _ in recs]
    assert any(e[3] == 5 for e in evs)
