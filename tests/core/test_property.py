"""Property: noise between records never changes the records read, however the bytes arrive."""

from __future__ import annotations

import math
import os
import tempfile

from hypothesis import given, settings
from hypothesis import strategies as st

from sfttop.core.parse import LogParser
from sfttop.core.records import Item, Kind, Record, expand
from sfttop.core.tail import FileTail

NOISE = [
    b"\r  3%|#         | 2/60 [00:00<00:02, 22.16it/s]",
    b"\r                                              \r",
    b"\x1b[A\x1b[2K",
    b"\x1b]0;title\x07",
    b"/usr/lib/python3/site-packages/torch/utils/checkpoint.py:92: UserWarning: None of the inputs\n",
    b"[2023-02-08 13:52:24,187] [INFO] [stage_1_and_2.py:1762:step] [deepspeed] OVERFLOW!\n",
    b"\x00\xff\xfe junk \n",
    b"Map: 100%|##########| 480/480 [00:00<00:00, 3661 examples/s]\r",
    b"{not a record}\n",
    b"\n",
]


def record_line(i: int, loss: float, tf5: bool) -> bytes:
    if tf5:
        return b"{'loss': '%.4g', 'grad_norm': '%.4g', 'learning_rate': '2e-05', 'epoch': '%.4g'}\n" % (
            loss,
            loss * 2,
            i / 100,
        )
    return b"{'loss': %r, 'grad_norm': %r, 'learning_rate': 2e-05, 'epoch': %r}\n" % (loss, loss * 2, i / 100)


def read(data_parts: list[bytes]) -> list[Record]:
    fd, path = tempfile.mkstemp()
    os.close(fd)
    try:
        t = FileTail(path)
        p = LogParser()
        p.interval = 1
        out: list[Item] = []
        evs: list = []
        for part in data_parts:
            with open(path, "ab") as f:
                f.write(part)
            c = t.poll(1 << 20)
            if c.data:
                p.feed_chunk(c.data, c.base, out, evs)
            p.flush(out)
        return expand(out)
    finally:
        os.unlink(path)


@settings(max_examples=60, deadline=None)
@given(
    losses=st.lists(st.floats(min_value=1e-4, max_value=50, allow_nan=False), min_size=1, max_size=20),
    noise=st.lists(st.lists(st.sampled_from(NOISE), max_size=4), min_size=21, max_size=21),
    tf5=st.booleans(),
    cuts=st.lists(st.integers(min_value=1, max_value=40), max_size=30),
)
def test_noise_and_split_writes_never_change_records(
    losses: list[float], noise: list[list[bytes]], tf5: bool, cuts: list[int]
) -> None:
    clean = b"".join(record_line(i + 1, x, tf5) for i, x in enumerate(losses))
    noisy = b""
    for i, x in enumerate(losses):
        noisy += b"".join(noise[i]) + record_line(i + 1, x, tf5)
    noisy += b"".join(noise[-1])
    # Deliver the noisy bytes in arbitrary pieces, as a writer and a poller interleave.
    parts = []
    pos = 0
    for c in cuts:
        parts.append(noisy[pos : pos + c])
        pos += c
    parts.append(noisy[pos:])
    expect = read([clean])
    got = read(parts)
    key = lambda r: (r.kind, r.step, sorted(r.metrics.items()), r.epoch)  # noqa: E731
    assert [key(r) for r in got] == [key(r) for r in expect]
    assert len(expect) == len(losses)
    assert all(r.kind is Kind.TRAIN and math.isfinite(r.metrics["loss"]) for r in got)
