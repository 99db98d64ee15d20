"""The tailer against what real log files do: appends, partial writes, truncation, rotation."""

from __future__ import annotations

import os
from pathlib import Path

from sfttop.core.tail import FileTail


def segs(t: FileTail) -> list[bytes]:
    return [s for _, s in t.poll().segments]


def test_partial_line_is_held_until_its_newline(tmp_path: Path) -> None:
    p = tmp_path / "train.log"
    p.write_bytes(b"")
    t = FileTail(str(p))
    assert segs(t) == []
    line = b"{'loss': 0.5, 'epoch': 0.1}\n"
    with open(p, "ab") as f:
        for i in range(len(line)):
            f.write(line[i : i + 1])
            f.flush()
            got = segs(t)
            if i < len(line) - 1:
                assert got == []
            else:
                assert got == [line[:-1]]


def test_offsets_point_at_the_segment(tmp_path: Path) -> None:
    p = tmp_path / "a.log"
    data = b"first\r bar 1/2\r bar 2/2\nsecond\n"
    p.write_bytes(data)
    out = FileTail(str(p)).poll().segments
    assert [s for _, s in out] == [b"first", b" bar 1/2", b" bar 2/2", b"second"]
    for off, s in out:
        assert data[off : off + len(s)] == s


def test_truncation_in_place_restarts_from_zero(tmp_path: Path) -> None:
    p = tmp_path / "train.log"
    p.write_bytes(b"one\ntwo\n")
    t = FileTail(str(p))
    assert segs(t) == [b"one", b"two"]
    with open(p, "r+b") as f:  # copytruncate / `> train.log`
        f.truncate(0)
    p.write_bytes(b"three\n")
    c = t.poll()
    assert c.reset == "truncated"
    assert [s for _, s in c.segments] == [b"three"]


def test_truncated_and_regrown_past_offset_between_polls(tmp_path: Path) -> None:
    p = tmp_path / "train.log"
    p.write_bytes(b"alpha\n")
    t = FileTail(str(p))
    segs(t)
    with open(p, "r+b") as f:
        f.truncate(0)
    p.write_bytes(b"a much longer new first line\nsecond\n")
    c = t.poll()
    assert c.reset == "truncated"
    assert [s for _, s in c.segments] == [b"a much longer new first line", b"second"]


def test_rotation_reads_the_new_file_from_its_start(tmp_path: Path) -> None:
    p = tmp_path / "train.log"
    p.write_bytes(b"old1\nold2\n")
    t = FileTail(str(p))
    segs(t)
    os.rename(p, tmp_path / "train.log.1")
    p.write_bytes(b"new1\n")
    c = t.poll()
    assert c.reset == "replaced"
    assert [s for _, s in c.segments] == [b"new1"]
    assert segs(t) == []


def test_deleted_then_recreated(tmp_path: Path) -> None:
    p = tmp_path / "train.log"
    p.write_bytes(b"run1\n")
    t = FileTail(str(p))
    segs(t)
    p.unlink()
    c = t.poll()
    assert c.reset == "vanished" and not t.exists and t.error == "file not found"
    p.write_bytes(b"run2\n")
    assert segs(t) == [b"run2"]
    assert t.exists and t.error is None


def test_symlink_repointed(tmp_path: Path) -> None:
    a, b = tmp_path / "a.log", tmp_path / "b.log"
    a.write_bytes(b"from a\n")
    b.write_bytes(b"from b\n")
    link = tmp_path / "current.log"
    link.symlink_to(a)
    t = FileTail(str(link))
    assert segs(t) == [b"from a"]
    link.unlink()
    link.symlink_to(b)
    assert segs(t) == [b"from b"]


def test_missing_file_appears_later(tmp_path: Path) -> None:
    p = tmp_path / "later.log"
    t = FileTail(str(p))
    assert segs(t) == [] and t.error == "file not found"
    p.write_bytes(b"hello\n")
    assert segs(t) == [b"hello"]


def test_unreadable_file_is_a_state_not_an_exception(tmp_path: Path) -> None:
    p = tmp_path / "secret.log"
    p.write_bytes(b"x\n")
    p.chmod(0)
    t = FileTail(str(p))
    try:
        out = segs(t)
        if os.geteuid() != 0:  # root reads anything
            assert out == [] and t.error == "permission denied"
    finally:
        p.chmod(0o644)


def test_huge_line_without_newline_is_dropped_not_buffered(tmp_path: Path) -> None:
    p = tmp_path / "train.log"
    with open(p, "wb") as f:
        f.write(b"before\n")
        f.write(b"x" * (3 << 20))
        f.write(b"\nafter\n")
    t = FileTail(str(p), max_line=1 << 20)
    got = []
    while True:
        c = t.poll(1 << 20)
        got += [s for _, s in c.segments]
        if c.eof:
            break
    assert got == [b"before", b"after"]
    assert t.oversized == 1
    assert len(t.carry) <= 1 << 20


def test_budget_reads_history_in_batches(tmp_path: Path) -> None:
    p = tmp_path / "big.log"
    p.write_bytes(b"".join(b"line %d\n" % i for i in range(10000)))
    t = FileTail(str(p))
    n = 0
    polls = 0
    while True:
        c = t.poll(4096)
        polls += 1
        n += len(c.segments)
        if c.eof:
            break
    assert n == 10000 and polls > 10


def test_never_writes_to_the_file(tmp_path: Path) -> None:
    p = tmp_path / "ro.log"
    p.write_bytes(b"a\nb\n")
    p.chmod(0o444)
    before = p.stat()
    t = FileTail(str(p))
    segs(t)
    after = p.stat()
    assert (before.st_mtime_ns, before.st_size) == (after.st_mtime_ns, after.st_size)


def test_rotation_reads_the_old_files_last_lines_first(tmp_path: Path) -> None:
    p = tmp_path / "train.log"
    p.write_bytes(b"old1\n")
    t = FileTail(str(p))
    assert segs(t) == [b"old1"]
    with open(p, "ab") as f:
        f.write(b"old2\n")  # written after our last poll, then rotated away
    os.rename(p, tmp_path / "train.log.1")
    p.write_bytes(b"new1\n")
    got = []
    resets = []
    for _ in range(3):
        c = t.poll()
        got += [s for _, s in c.segments]
        resets.append(c.reset)
    assert got == [b"old2", b"new1"]
    assert "replaced" in resets
    t.close()


def test_unreadable_file_is_named_not_raised(tmp_path: Path, monkeypatch: object) -> None:
    import errno

    import pytest

    p = tmp_path / "secret.log"
    p.write_bytes(b"x\n")
    real_open = os.open

    def deny(path: str, flags: int, *a: object) -> int:
        if str(path) == str(p):
            raise PermissionError(errno.EACCES, "Permission denied")
        return real_open(path, flags, *a)  # type: ignore[arg-type]

    mp = pytest.MonkeyPatch()
    mp.setattr(os, "open", deny)
    try:
        t = FileTail(str(p))
        assert segs(t) == [] and t.error == "permission denied"
    finally:
        mp.undo()
    assert segs(t) == [b"x"] and t.error is None


def test_waker_wakes_on_a_write_and_sleeps_otherwise(tmp_path: Path) -> None:
    import time

    from sfttop.core.wake import Waker, log_dirs

    log = tmp_path / "run" / "train.log"
    log.parent.mkdir()
    log.write_bytes(b"")
    w = Waker()
    try:
        w.watch(log_dirs([str(tmp_path / "*" / "train.log"), str(log)]))
        if not w.active:  # not Linux, or inotify refused: a plain sleep is the contract
            t = time.monotonic()
            assert w.wait(0.05) is False and time.monotonic() - t >= 0.04
            return
        assert w.wait(0.05) is False
        with open(log, "ab") as f:
            f.write(b"x\n")
        t = time.monotonic()
        assert w.wait(2.0) is True
        assert time.monotonic() - t < 1.0
    finally:
        w.close()


def test_dropped_tails_give_their_descriptors_back(tmp_path: Path) -> None:
    # More tails than MAX_HELD, each dropped without close(): a later tail still holds its
    # file, so a rotation is still read to its end.
    import gc

    from sfttop.core import tail as tail_mod

    p = tmp_path / "x.log"
    p.write_bytes(b"a\n")
    for _ in range(tail_mod.MAX_HELD + 10):
        t = FileTail(str(p))
        t.poll()
        del t
    gc.collect()
    t = FileTail(str(p))
    t.poll()
    assert t._fd is not None
    t.close()
