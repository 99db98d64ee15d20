"""Property: whatever a writer and the file system do, the tailer reads every record once.

A hypothesis state machine writes records in arbitrary pieces (a line may arrive a byte at a
time), polls at arbitrary moments, and truncates, rotates, deletes and re-creates the file. The
records read must equal the records written, each once. The only losses a tailer cannot avoid are
excluded by the preconditions: a file truncated before the tailer caught up, or removed before
it ever saw it.
"""

from __future__ import annotations

import os
import shutil
import tempfile

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from sfttop.core.parse import LogParser
from sfttop.core.records import Item, expand
from sfttop.core.tail import FileTail


def line(i: int) -> bytes:
    return b'{"step": %d, "loss": %r, "learning_rate": 2e-05}\n' % (i, 1.0 + i / 7)


class TailMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.mkdtemp()
        self.path = os.path.join(self.dir, "train.log")
        self.tail = FileTail(self.path)
        self.parser = LogParser()
        self.read: list[int] = []
        self.written: list[int] = []
        self.next = 1
        self.rotations = 0
        self.seen_current = False  # the tailer has polled since this file was created
        self.exists = False

    def _poll(self) -> None:
        for _ in range(50):
            c = self.tail.poll(budget=97)  # a tiny budget: reads stop mid-line all the time
            recs: list[Item] = []
            if c.data:
                self.parser.feed_chunk(c.data, c.base, recs, [])
            self.parser.flush(recs, final=c.eof)
            self.read += [r.step for r in expand(recs)]
            if self.tail.exists and self.tail.ident is not None:
                self.seen_current = True
            if c.eof and not c.grew and c.reset is None:
                break

    @rule(n=st.integers(1, 6), cuts=st.lists(st.integers(1, 60), max_size=8), poll_between=st.booleans())
    def write(self, n: int, cuts: list[int], poll_between: bool) -> None:
        data = b"".join(line(i) for i in range(self.next, self.next + n))
        self.written += list(range(self.next, self.next + n))
        self.next += n
        if not self.exists:
            self.exists = True
            self.seen_current = False
        pos = 0
        pieces = []
        for c in cuts:
            pieces.append(data[pos : pos + c])
            pos += c
        pieces.append(data[pos:])
        for piece in pieces:
            if not piece:
                continue
            with open(self.path, "ab") as f:
                f.write(piece)
            if poll_between:
                self._poll()

    @rule()
    def poll(self) -> None:
        self._poll()

    @precondition(lambda self: self.exists)
    @rule()
    def truncate_in_place(self) -> None:
        self._poll()  # copytruncate loses what the reader had not read yet: catch up first
        with open(self.path, "r+b") as f:
            f.truncate(0)

    @precondition(lambda self: self.exists and self.seen_current)
    @rule()
    def rotate(self) -> None:
        self.rotations += 1
        os.rename(self.path, f"{self.path}.{self.rotations}")
        self.exists = False

    @precondition(lambda self: self.exists and self.seen_current)
    @rule()
    def delete(self) -> None:
        os.unlink(self.path)
        self.exists = False

    @invariant()
    def never_twice(self) -> None:
        assert len(self.read) == len(set(self.read))
        assert set(self.read) <= set(self.written)

    def teardown(self) -> None:
        self._poll()
        self._poll()
        try:
            assert sorted(self.read) == self.written
        finally:
            self.tail.close()
            shutil.rmtree(self.dir, ignore_errors=True)


TestTailMachine = TailMachine.TestCase
TestTailMachine.settings = settings(max_examples=120, stateful_step_count=25, deadline=None)
