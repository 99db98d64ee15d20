"""Runs of one-scalar TensorBoard records read as columns, with a handful of C-level calls.

An HF (or torch ``SummaryWriter``, tensorboardX, Megatron) event file is almost only records of
one shape: a TFRecord frame around an ``Event`` of wall_time, step and a ``Summary`` of one
``Value`` (a tag and a ``simple_value``). Framing and decoding them one at a time in Python costs
a few microseconds each, and a run logs seven or more per step. Here the records of one step (a
"cycle") are matched once by regex, which gives the byte layout every later cycle of the same
tags has; runs of such cycles ("stretches") are then checked against the layout as big ints and
their fields come out as columns (steps, values) through ``map`` and ``struct``, with no Python
frame per record.

Nothing is taken on trust: a stretch is only cycles whose every fixed byte (length fields and
their CRCs, field tags, inner lengths, the tags themselves) is the layout's, whose records share
a step and whose steps rise; the data CRCs of a read's stretches are checked together per layout
(``_Crcs``), and the read is done record by record when that fails. Everything else (text
summaries, tensor scalars, images, damage, a record cut at the end) goes through
``tfrecord.split_records`` and the general decoder, in file order.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import reduce
from itertools import compress, count, repeat
from operator import add, and_, ge, lshift, ne, or_, xor
from typing import Literal

from .tfrecord import _MASK_DELTA, _SPREAD, _advance_tables, _zeros_crc, crc32c, masked_crc32c, split_records

# A length under 256 (its other seven bytes zero) and its CRC; wall_time; the step as a varint;
# the Summary, its Value and the tag's length bytes, each one byte; the tag, counted (one branch
# per length: the regex engine checks a branch's first byte before trying it); 0x15 and the
# float; the data CRC.
_TAG = b"(?:" + b"|".join(re.escape(bytes([t])) + b".{%d}" % t for t in range(1, 128)) + b")"
_SCALAR = re.compile(
    rb"(([\x01-\xff]\x00{7}.{4})(\x09.{8}\x10([\x80-\xff]{0,9}[\x00-\x7f])(\x2a[\x00-\x7f]\x0a[\x00-\x7f]\x0a"
    + _TAG
    + rb"\x15)(.{4}))(.{4}))",
    re.S,
)
_HEADS = [struct.pack("<QI", n, masked_crc32c(struct.pack("<Q", n))) for n in range(256)]


class _Shapes(dict[bytes, bytes]):
    """The tag of a Summary/Value/tag byte run (``\\x2a S \\x0a V \\x0a t tag \\x15``) when its
    length bytes agree (S = t + 9, V = t + 7); b"" when they do not (not a one-scalar event)."""

    def __missing__(self, shape: bytes) -> bytes:
        t = shape[5]
        tag = shape[6:-1] if shape[1] == t + 9 and shape[3] == t + 7 and len(shape) == t + 7 else b""
        if len(self) < 4096:
            self[shape] = tag
        return tag


class _Steps(dict[bytes, int]):
    """A step's varint bytes -> the int64 it encodes."""

    def __missing__(self, raw: bytes) -> int:
        step = 0
        for i, b in enumerate(raw):
            step |= (b & 0x7F) << (7 * i)
        if step >= 1 << 63:
            step -= 1 << 64
        self[raw] = step
        return step


_SHAPES = _Shapes()


@dataclass(frozen=True, slots=True, eq=False)
class _Layout:
    """The byte layout of one cycle: the records of one step, each a one-scalar record."""

    size: int  # bytes in a cycle
    mask: bytes  # of a cycle's bytes, the bits that are the same in every cycle of this layout
    template: bytes  # ... and what they are
    tags: tuple[bytes, ...]
    starts: tuple[int, ...]  # each record's header in the cycle
    lengths: tuple[int, ...]  # each record's data length
    width: int  # bytes of the step varint (one step: the same in every record of a cycle)
    step_at: tuple[int, ...]  # where each record's step varint is in the cycle
    value_at: tuple[int, ...]  # ... its float value
    crc_at: tuple[int, ...]  # ... its stored data CRC
    lead: bytes  # the first record's length field and its CRC
    values: struct.Struct  # a cycle's float values, the rest of it skipped
    masks: dict[int, tuple[int, int]] = field(default_factory=dict)  # cycles -> (mask, template) as ints


@dataclass(slots=True)
class Stretch:
    """Consecutive cycles of one layout, every record of a cycle at one step, steps rising from
    cycle to cycle, every CRC valid; as columns: ``values[j][c]`` is record j of cycle c."""

    offset: int  # file offset of the first cycle
    layout: _Layout
    steps: list[int]  # each cycle's step
    values: list[tuple[float, ...]]

    @property
    def cycles(self) -> int:
        return len(self.steps)

    @property
    def count(self) -> int:
        return len(self.steps) * len(self.layout.tags)


@dataclass
class Scanned:
    """``split_records``'s result, with stretches of one-scalar records as rows among the rest."""

    items: list[Stretch | tuple[int, bytes]]  # in file order: a stretch, or (offset, data) of a record
    end: int
    corrupt: int = 0
    oversized: int = 0
    need: int = 0

    @property
    def count(self) -> int:
        return sum(it.count if isinstance(it, Stretch) else 1 for it in self.items)


_MIN_CYCLES = 3  # fewer are read record by record (the first and last of a stretch are anyway)
_MAX_CYCLE = 64  # records in a cycle
_LAYOUTS: dict[tuple[tuple[bytes, bytes, int], ...], _Layout] = {}


def scan_records(buf: bytes, base: int = 0, at_eof: bool = True) -> Scanned:
    """What ``split_records(buf, base, at_eof)`` finds, in the same order with the same counts,
    stretches of cycles (see ``Stretch``) as rows."""
    out = Scanned([], base)
    n = len(buf)
    pos = 0
    crcs = _Crcs()
    recent: list[_Layout] = []  # layouts met in this read, newest first: tried before _cycle
    while pos < n:
        stretch = None
        for lay in recent:
            # A layout seen before (the train steps after an evaluation): any cycle of it is
            # one step's records, so the stretch is read as one that _cycle found. (Its first
            # record's length field first: an evaluation's records are not a train step's.)
            if not buf.startswith(lay.lead, pos):
                continue
            stretch = _stretch(buf, pos, lay, base)
            if stretch is not None:
                break
        layout = stretch.layout if stretch is not None else _cycle(buf, pos)
        if layout is not None:
            if stretch is None:
                stretch = _stretch(buf, pos, layout, base)
                if layout in recent:
                    recent.remove(layout)
                recent.insert(0, layout)
                del recent[4:]
            if stretch is not None:
                crcs.add(buf, pos, stretch)
                out.items.append(stretch)
                pos += stretch.cycles * layout.size
                continue
            stop = pos + layout.size
        else:
            nxt = _SCALAR.search(buf, pos + 1)
            stop = nxt.start() if nxt is not None else n
        # Record by record up to where a cycle could start.
        framed = split_records(buf, base, at_eof, start=pos, stop=stop)
        out.items.extend(framed.records)
        out.corrupt += framed.corrupt
        out.oversized += framed.oversized
        out.need = framed.need
        if framed.end - base == pos:
            break  # a record (or a header) cut at the end: read again once it is whole
        pos = framed.end - base
    out.end = base + pos
    if not crcs.ok():
        # Some record of a stretch is damaged: read it all record by record, which finds which.
        framed = split_records(buf, base, at_eof)
        return Scanned(list(framed.records), framed.end, framed.corrupt, framed.oversized, framed.need)
    return out


def _cycle(buf: bytes, pos: int) -> _Layout | None:
    """The layout of the records of one step from ``pos``: one-scalar records at the step of
    the first, no tag twice; None when the record at ``pos`` is not one."""
    key: list[tuple[bytes, bytes, int]] = []
    first = b""
    p = pos
    match = _SCALAR.match
    while len(key) < _MAX_CYCLE:
        m = match(buf, p)
        if m is None:
            break
        _rec, head, data, step, shape, _value, _crc = m.groups()
        if head != _HEADS[len(data)] or not _SHAPES[shape]:
            break
        if key and (step != first or any(shape == k[1] for k in key)):
            break
        first = step
        key.append((head, shape, len(step)))
        p += 16 + len(data)
    if not key:
        return None
    t = tuple(key)
    layout = _LAYOUTS.get(t)
    if layout is None:
        layout = _layout(t)
        if len(_LAYOUTS) < 256:
            _LAYOUTS[t] = layout
    return layout


def _layout(key: tuple[tuple[bytes, bytes, int], ...]) -> _Layout:
    mask, template = bytearray(), bytearray()
    starts, lengths, step_at, value_at, crc_at = [], [], [], [], []
    at = 0
    width = key[0][2]
    for head, shape, s in key:
        # header, 0x09, wall_time, 0x10 | step varint (only its continuation bits are fixed) |
        # the Summary/Value/tag bytes | value, data CRC
        fixed = head + b"\x09"
        mask += b"\xff" * len(fixed) + bytes(8) + b"\xff" + b"\x80" * s + b"\xff" * len(shape) + bytes(8)
        template += fixed + bytes(8) + b"\x10" + b"\x80" * (s - 1) + b"\x00" + shape + bytes(8)
        length = 10 + s + len(shape) + 4
        starts.append(at)
        lengths.append(length)
        step_at.append(at + 22)
        value_at.append(at + 22 + s + len(shape))
        crc_at.append(at + 12 + length)
        at += 16 + length
    return _Layout(
        at,
        bytes(mask),
        bytes(template),
        tuple(_SHAPES[shape] for _, shape, _ in key),
        tuple(starts),
        tuple(lengths),
        width,
        tuple(step_at),
        tuple(value_at),
        tuple(crc_at),
        key[0][0],
        struct.Struct("<" + "".join(f"{a - b}xf" for a, b in zip(value_at, [0, *(v + 4 for v in value_at)])) + f"{at - value_at[-1] - 4}x"),
    )


def _extent(buf: bytes, pos: int, layout: _Layout) -> int:
    """How many cycles of ``layout`` follow from ``pos``: their fixed bits compared as one int
    with those of as many template cycles (2, then twice as many each time, up to 4096: an
    evaluation's layout is one cycle long, a train stretch some hundreds)."""
    size = layout.size
    most = min((len(buf) - pos) // size, 1 << 16)
    n = 0
    k = 2
    while n < most:
        k = min(k, most - n)
        got = layout.masks.get(k)
        if got is None:
            got = (int.from_bytes(layout.mask * k, "big"), int.from_bytes(layout.template * k, "big"))
            if len(layout.masks) < 16:
                layout.masks[k] = got
        a = pos + n * size
        diff = (int.from_bytes(buf[a : a + k * size], "big") & got[0]) ^ got[1]
        if diff:
            # the most significant differing bit is in the first cycle that is not one
            return n + (k * size - 1 - (diff.bit_length() - 1) // 8) // size
        n += k
        k = min(2 * k, 4096)
    return n


def _stretch(buf: bytes, pos: int, layout: _Layout, base: int) -> Stretch | None:
    """The cycles of ``layout`` from ``pos`` whose records share a step, steps rising from
    cycle to cycle (their CRCs are checked by ``_Crcs``). Each field is read as a column: a
    strided memoryview of the cycles (one byte of the field in every cycle)."""
    size = layout.size
    n = _extent(buf, pos, layout)
    if n == 0:
        return None
    mv = memoryview(buf)[pos : pos + n * size]
    w = layout.width
    first = [mv[layout.step_at[0] + i :: size] for i in range(w)]
    for at in layout.step_at[1:]:
        for i in range(w):
            other = mv[at + i :: size]
            if other != first[i]:
                n = min(n, next(compress(count(), map(ne, first[i], other))))
    # The step from its varint bytes, a column at a time (the last byte is under 0x80).
    steps_it: Iterator[int] = iter(first[0]) if w == 1 else map(and_, first[0], repeat(0x7F))
    for i in range(1, w):
        steps_it = map(or_, steps_it, map(lshift, map(and_, first[i], repeat(0x7F)), repeat(7 * i)))
    steps = list(steps_it)
    if w >= 10:
        steps = [s - (1 << 64) if s >= 1 << 63 else s for s in steps]
    if n > 1:
        n = min(n, next(compress(count(1), map(ge, steps, steps[1:])), n))
    if n == 0:
        return None  # the records of its first cycle are not at one step
    del steps[n:]
    # Each cycle's values by one struct (the bytes between them skipped), then as columns.
    values = list(zip(*layout.values.iter_unpack(mv[: n * size])))
    return Stretch(base + pos, layout, steps, values)


class _Crcs:
    """The data CRCs of every stretch of one read, checked together per layout.

    As ``tfrecord._intact`` does for records of one length: a CRC is linear, so the XOR of the
    records at one place of a cycle must have the XOR of their registers, and a second check
    shifts the record of cycle i by i mod ``_SPREAD`` bytes. The XORs are kept per slot (cycle
    i of a layout lands in slot i mod 64): a stretch's bytes are read as ints a block of 64
    cycles at a time (little-endian, so slot k is bytes k * size onwards and only the first,
    partial block needs a shift) and XORed together, every operation over a whole block in C.
    The stored CRCs are gathered into 64-bit lanes and unmasked up to their rotation there, a
    block at a time: adding 2**32 - delta to every lane cannot carry into the next, and the low
    32 bits of each lane are then (crc - delta) mod 2**32 (the rotation commutes with XOR and is
    applied after folding). What is left per layout and read is a few hundred small ints.
    """

    def __init__(self) -> None:
        self.acc: dict[_Layout, list[int]] = {}  # layout -> [folded data, folded unmasked CRCs, cycles]

    def add(self, buf: bytes, pos: int, stretch: Stretch) -> None:
        lay = stretch.layout
        n = stretch.cycles
        acc = self.acc.get(lay)
        if acc is None:
            acc = self.acc[lay] = [0, 0, 0]
        k0 = acc[2] % _SPREAD
        head = min(n, _SPREAD - k0)  # cycles before the slots wrap round
        size = lay.size
        p = len(lay.tags)
        end = pos + n * size
        mv = memoryview(buf)[:end]
        little: Literal["little"] = "little"
        block = _SPREAD * size
        cut = pos + head * size
        acc[0] ^= reduce(
            xor,
            map(int.from_bytes, [mv[i : i + block] for i in range(cut, end, block)], repeat(little)),
            int.from_bytes(mv[pos:cut], little) << (8 * size * k0),
        )
        # The stored CRCs, cycle by cycle and record by record, each in a 64-bit lane.
        lanes = bytearray(8 * p * n)
        for j, at in enumerate(lay.crc_at):
            for k in range(4):
                lanes[8 * j + k :: 8 * p] = mv[pos + at + k : end : size]
        lane_block = 8 * p * _SPREAD
        plus, low = _lane_constants(p * _SPREAD)
        cut = 8 * p * head
        first = int.from_bytes(lanes[:cut], little)
        if head < _SPREAD:
            part_plus, part_low = _lane_constants(p * head)
            first = (first + part_plus) & part_low
        else:
            first = (first + plus) & low
        folded = first << (64 * p * k0)
        whole = len(lanes) - (len(lanes) - cut) % lane_block
        if whole > cut:
            blocks = map(int.from_bytes, [lanes[i : i + lane_block] for i in range(cut, whole, lane_block)], repeat(little))
            folded ^= reduce(xor, map(and_, map(add, blocks, repeat(plus)), repeat(low)))
        if whole < len(lanes):
            part_plus, part_low = _lane_constants((len(lanes) - whole) // 8)
            folded ^= (int.from_bytes(lanes[whole:], little) + part_plus) & part_low
        acc[1] ^= folded
        acc[2] += n

    def ok(self) -> bool:
        for lay, (data, stored, cycles) in self.acc.items():
            p = len(lay.tags)
            fb = data.to_bytes(_SPREAD * lay.size, "little")
            us = struct.unpack(f"<{2 * p * _SPREAD}I", stored.to_bytes(8 * p * _SPREAD, "little"))[::2]
            adv = _advance_tables()
            for j in range(p):
                a, length = lay.starts[j] + 12, lay.lengths[j]
                zeros = _zeros_crc(length)
                plain = shifted = regs = fed = 0
                for k in range(min(_SPREAD, cycles)):
                    d = int.from_bytes(fb[k * lay.size + a : k * lay.size + a + length], "big")
                    plain ^= d
                    shifted ^= d << (8 * k)
                    u = us[k * p + j]
                    r = ((u << 15) | (u >> 17)) & 0xFFFFFFFF
                    if (cycles // _SPREAD + (k < cycles % _SPREAD)) % 2:
                        r ^= zeros
                    regs ^= r
                    a0, a1, a2, a3 = adv[k]
                    fed ^= a0[r & 0xFF] ^ a1[(r >> 8) & 0xFF] ^ a2[(r >> 16) & 0xFF] ^ a3[r >> 24]
                if crc32c(plain.to_bytes(length, "big")) ^ zeros != regs:
                    return False
                size = length + _SPREAD - 1
                if crc32c(shifted.to_bytes(size, "big")) ^ _zeros_crc(size) != fed:
                    return False
        return True


_LANES: dict[int, tuple[int, int]] = {}


def _lane_constants(lanes: int) -> tuple[int, int]:
    """For that many little-endian 64-bit lanes: 2**32 - delta in each, and 2**32 - 1 in each."""
    got = _LANES.get(lanes)
    if got is None:
        got = (
            int.from_bytes(((1 << 32) - _MASK_DELTA).to_bytes(8, "little") * lanes, "little"),
            int.from_bytes(b"\xff\xff\xff\xff\x00\x00\x00\x00" * lanes, "little"),
        )
        if len(_LANES) < 1024:
            _LANES[lanes] = got
    return got
