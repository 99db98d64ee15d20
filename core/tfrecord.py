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
from dataclasses import dataclass

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
    ("slicing by 8"): event records are small, but a log holds hundreds of thousands."""
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


_SHORT = 256  # records up to this long are checked against the previous one of their length
_G: list[list[int]] = [_T0]  # _G[k][b]: the CRC register contribution of byte b, k bytes from the end
_LAST: dict[int, tuple[int, int]] = {}  # length -> (data as int, its CRC) of the latest such record


def _tables_to(k: int) -> list[list[int]]:
    while len(_G) <= k:
        t0 = _T0
        _G.append([t0[c & 0xFF] ^ (c >> 8) for c in _G[-1]])
    return _G


def crc32c_like_last(data: bytes) -> int:
    """``crc32c(data)``, computed from the last record of the same length when there is one.

    A CRC is affine: for equal lengths, crc(a) ^ crc(b) is the CRC register fed a ^ b from zero.
    Consecutive scalar events differ in a few bytes (time, step, value) out of ~45, so only
    those bytes are looked up, each in the table for its distance from the end.
    """
    n = len(data)
    if n > _SHORT:
        return crc32c(data)
    x = int.from_bytes(data, "little")
    last = _LAST.get(n)
    if last is None:
        crc = crc32c(data)
        _tables_to(n)
    else:
        crc = last[1]
        d = x ^ last[0]
        g = _G
        end = n - 1
        while d:
            sh = ((d & -d).bit_length() - 1) & ~7
            b = (d >> sh) & 0xFF
            crc ^= g[end - (sh >> 3)][b]
            d ^= b << sh
    _LAST[n] = (x, crc)
    return crc


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


def split_records(buf: bytes, base: int = 0, at_eof: bool = True) -> Framed:
    """The complete records in ``buf`` (which starts at file offset ``base``).

    ``at_eof``: ``buf`` ends where the file ends now, so a record running past it is being
    written (wait for it); otherwise the caller read only part of the file and a cut record is
    simply read next time. Either way ``end`` stops before it.
    """
    out: list[tuple[int, bytes]] = []
    n = len(buf)
    pos = 0
    corrupt = oversized = 0
    need = 0
    unpack = _HEAD.unpack_from
    known = _HEADER_CRCS
    while pos + HEADER <= n:
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
        data = buf[pos + HEADER : pos + HEADER + length]
        crc = crc32c_like_last(data)
        if _U32.unpack_from(buf, end - FOOTER)[0] != (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF:
            corrupt += 1
        else:
            out.append((base + pos, data))
        pos = end
    return Framed(out, base + pos, corrupt, oversized, need)


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
