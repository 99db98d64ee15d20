"""TFRecord framing, the container of TensorBoard event files, read without TensorFlow.

A file is a sequence of records, each::

    uint64 length (little-endian) | uint32 masked_crc32c(length) | data[length] | uint32 masked_crc32c(data)

Event files are read while a trainer writes them, so the reader works on what is on disk now:
a record cut at the end of the data (the writer is mid-write, or the read raced its flush) is
left for the next read, from the offset of the last complete record. A record whose checksum
does not match is skipped and counted; when it is the length that is damaged, reading goes on
at the next place a valid record header starts.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from functools import reduce
from itertools import repeat
from operator import xor
from typing import Literal

_POLY = 0x82F63B78  # CRC-32C (Castagnoli), reflected
_MASK_DELTA = 0xA282EAD8
HEADER = 12  # length (8) + its CRC (4)
FOOTER = 4
MAX_RECORD = 16 << 20  # longer records (images, graphs) are skipped unread: never a scalar


def _tables() -> tuple[list[int], ...]:
    t0 = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ _POLY if c & 1 else c >> 1
        t0.append(c)
    tables = [t0]
    for _ in range(7):
        prev = tables[-1]
        tables.append([(prev[n] >> 8) ^ t0[prev[n] & 0xFF] for n in range(256)])
    return tuple(tables)


_T0, _T1, _T2, _T3, _T4, _T5, _T6, _T7 = _tables()
_U64 = struct.Struct("<Q")
_HEAD = struct.Struct("<QI")
_U32 = struct.Struct("<I")


def crc32c(data: bytes) -> int:
    """CRC-32C of ``data``. Pure Python (no C extension may be assumed), so eight bytes a step
    ("slicing by 8"); ``split_records`` needs only a couple per record length per read."""
    crc = 0xFFFFFFFF
    n8 = len(data) & ~7
    if n8:
        t0, t1, t2, t3, t4, t5, t6, t7 = _T0, _T1, _T2, _T3, _T4, _T5, _T6, _T7
        for (w,) in _U64.iter_unpack(data[:n8] if n8 != len(data) else data):
            c = crc ^ w
            crc = (
                t7[c & 0xFF]
                ^ t6[(c >> 8) & 0xFF]
                ^ t5[(c >> 16) & 0xFF]
                ^ t4[(c >> 24) & 0xFF]
                ^ t3[(c >> 32) & 0xFF]
                ^ t2[(c >> 40) & 0xFF]
                ^ t1[(c >> 48) & 0xFF]
                ^ t0[c >> 56]
            )
    t0 = _T0
    for b in data[n8:]:
        crc = t0[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


_ZEROS_CRC: dict[int, int] = {}  # length -> crc32c of that many zero bytes
_SPREAD = 64  # records of one length are weighted by their number modulo this (see split_records)
_ADVANCE: list[tuple[list[int], ...]] = []  # [m][j][b]: register value (b << 8j) fed m zero bytes


def _zeros_crc(n: int) -> int:
    k = _ZEROS_CRC.get(n)
    if k is None:
        k = _ZEROS_CRC[n] = crc32c(bytes(n))
    return k


def _advance_tables() -> list[tuple[list[int], ...]]:
    if not _ADVANCE:
        t0 = _T0
        cur = [[b << (8 * j) for b in range(256)] for j in range(4)]
        for _ in range(_SPREAD):
            _ADVANCE.append(tuple(cur))
            cur = [[t0[c & 0xFF] ^ (c >> 8) for c in tab] for tab in cur]
    return _ADVANCE


def masked_crc32c(data: bytes) -> int:
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def frame(data: bytes) -> bytes:
    """``data`` as one record (for tests and tools; sfttop never writes event files)."""
    head = _U64.pack(len(data))
    return head + _U32.pack(masked_crc32c(head)) + data + _U32.pack(masked_crc32c(data))


@dataclass
class Framed:
    """What ``split_records`` found in a buffer."""

    records: list[tuple[int, bytes]]  # (offset of the record's header, its data)
    end: int  # where the next read starts: after the last complete (or skipped) record
    corrupt: int = 0  # records skipped: a checksum did not match
    oversized: int = 0  # records longer than MAX_RECORD, skipped unread
    need: int = 0  # bytes a cut record at ``end`` needs in all (0: none cut, or unknown)


# Masked CRCs of length fields: an event file's records come in a few dozen lengths.
_HEADER_CRCS: dict[bytes, int] = {}


def _header_ok(buf: bytes, pos: int) -> bool:
    crc: int = _U32.unpack_from(buf, pos + 8)[0]
    return crc == masked_crc32c(buf[pos : pos + 8])


def split_records(buf: bytes, base: int = 0, at_eof: bool = True, *, start: int = 0, stop: int | None = None) -> Framed:
    """The complete records in ``buf`` (which starts at file offset ``base``), from ``start``
    (a record's start) up to the first record that starts at or after ``stop``.

    ``at_eof``: ``buf`` ends where the file ends now, so a record running past it is being
    written (wait for it); otherwise the caller read only part of the file and a cut record is
    simply read next time. Either way ``end`` stops before it.

    Length CRCs are checked one by one (from a memo: a file has a few dozen lengths); data CRCs
    a length at a time (``_intact``), and one by one only for a length whose check fails.
    """
    out: list[tuple[int, bytes]] = []
    n = len(buf)
    pos = start
    stop = n if stop is None else stop
    corrupt = oversized = 0
    need = 0
    unpack = _HEAD.unpack_from
    footer = _U32.unpack_from
    known = _HEADER_CRCS
    by_length: dict[int, tuple[list[bytes], list[int], list[int]]] = {}  # data, stored CRC, index
    while pos + HEADER <= n and pos < stop:
        length, lcrc = unpack(buf, pos)
        head = buf[pos : pos + 8]
        want = known.get(head)
        if want is None:
            want = masked_crc32c(head)
            if len(known) < 4096:
                known[head] = want
        if lcrc != want:
            corrupt += 1
            pos = _resync(buf, pos + 1)
            continue
        end = pos + HEADER + length + FOOTER
        if length > MAX_RECORD:
            if end > n:
                need = HEADER + length + FOOTER
                break
            oversized += 1
            pos = end
            continue
        if end > n:
            need = HEADER + length + FOOTER
            break
        data = buf[pos + HEADER : end - FOOTER]
        group = by_length.get(length)
        if group is None:
            group = by_length[length] = ([], [], [])
        group[0].append(data)
        group[1].append(footer(buf, end - FOOTER)[0])
        group[2].append(len(out))
        out.append((base + pos, data))
        pos = end
    bad: list[int] = []
    for length, (datas, masked, idx) in by_length.items():
        rotated = [(v - _MASK_DELTA) & 0xFFFFFFFF for v in masked]  # unmasked: rotated back below
        crcs = [((u << 15) | (u >> 17)) & 0xFFFFFFFF for u in rotated]
        if not _intact(length, datas, crcs):
            bad.extend(i for i, d, c in zip(idx, datas, crcs) if crc32c(d) != c)
    if bad:
        corrupt += len(bad)
        drop = set(bad)
        out = [r for i, r in enumerate(out) if i not in drop]
    return Framed(out, base + pos, corrupt, oversized, need)


def _ints(datas: list[bytes]) -> Iterator[int]:
    big: Literal["big"] = "big"
    return map(int.from_bytes, datas, repeat(big))


def _intact(length: int, datas: list[bytes], crcs: list[int]) -> bool:
    """Whether records of one length all match their (unmasked) CRCs, with two pure-Python
    CRCs however many records there are.

    A CRC is linear up to a constant per length: crc(d) = reg(d) ^ crc(zeros), where reg (the
    register fed ``d`` from zero) is linear, so the XOR of the records' data must have the XOR
    of their registers. Damage to one record always shows. Damage to two can cancel out when it
    is the same bit pattern at the same place (a bit flipped at the same offset), so a second
    check shifts record i by i mod ``_SPREAD`` zero bytes (feeding its stored CRC the same zero
    bytes), which moves such damage apart. Both pass on damaged records only when two of them
    were hit at the same place and their numbers are a multiple of 64 apart, or when the damage
    happens to cancel (odds 2**-32); every XOR below runs in C.
    """
    zeros = _zeros_crc(length)
    plain = reduce(xor, _ints(datas), 0)
    if crc32c(plain.to_bytes(length, "big")) ^ (0 if len(datas) % 2 else zeros) != reduce(xor, crcs, 0):
        return False
    if len(datas) == 1:
        return True
    adv = _advance_tables()
    shifted = fed = 0
    for k in range(min(_SPREAD, len(datas))):
        part = datas[k::_SPREAD]
        shifted ^= reduce(xor, _ints(part), 0) << (8 * k)
        c = reduce(xor, crcs[k::_SPREAD], 0) ^ (zeros if len(part) % 2 else 0)
        a0, a1, a2, a3 = adv[k]
        fed ^= a0[c & 0xFF] ^ a1[(c >> 8) & 0xFF] ^ a2[(c >> 16) & 0xFF] ^ a3[c >> 24]
    size = length + _SPREAD - 1
    return crc32c(shifted.to_bytes(size, "big")) ^ _zeros_crc(size) == fed


def _resync(buf: bytes, pos: int) -> int:
    """The next offset from ``pos`` where a valid record header starts (the end of the complete
    headers in ``buf`` when there is none: the rest is read again once more has been written)."""
    n = len(buf)
    while pos + HEADER <= n:
        # A length under 4 GiB has four zero high bytes: only such places are checked.
        z = buf.find(b"\x00\x00\x00\x00", pos + 4)
        if z < 0 or z + 8 > n:
            break
        cand = z - 4
        if cand >= pos and _header_ok(buf, cand):
            return cand
        pos = max(pos + 1, cand + 1)
    return max(pos, n - HEADER + 1) if n >= HEADER else pos
