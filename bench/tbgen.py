#!/usr/bin/env python3
"""The benchmark's records (``genlogs.records``) as the HF ``TensorBoardCallback`` writes them.

One ``add_scalar`` per key of each logged dict (``train/<key>``, ``eval/<key>`` for ``eval_*``,
epoch as ``train/epoch``), at the dict's step, each its own ``Event`` with a ``simple_value``,
framed as TFRecords with their CRCs: byte for byte what ``torch.utils.tensorboard`` leaves (the
encoding is written out here so the generator needs neither torch nor tensorboard). With
``--jsonl`` the same records are written as JSON lines too, to compare loading both; ``--time N``
then loads each N times, interleaved (``Monitor.load_all``, what ``--report`` does before it
writes), and prints the medians:

    python bench/tbgen.py /tmp/tb --records 20000 --jsonl /tmp/tb.jsonl --time 5
    time sfttop --report /tmp/tb >/dev/null; time sfttop --report /tmp/tb.jsonl >/dev/null
"""

from __future__ import annotations

import argparse
import os
import struct
import sys
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from genlogs import records, write_jsonl

from sfttop.core.tfrecord import frame


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _field(num: int, payload: bytes) -> bytes:
    return _varint(num << 3 | 2) + _varint(len(payload)) + payload


def scalar_event(wall_time: float, step: int, tag: str, value: float) -> bytes:
    value_msg = _field(1, tag.encode()) + b"\x15" + struct.pack("<f", value)
    return b"\x09" + struct.pack("<d", wall_time) + b"\x10" + _varint(step) + _field(5, _field(1, value_msg))


def write_events(directory: str, n: int, seed: int = 0) -> tuple[str, int]:
    os.makedirs(directory, exist_ok=True)
    t0 = 1_700_000_000.0
    path = os.path.join(directory, f"events.out.tfevents.{int(t0)}.bench.1.0")
    version = b"\x09" + struct.pack("<d", t0) + _field(3, b"brain.Event:2")
    scalars = 0
    with open(path, "wb") as f:
        buf = bytearray(frame(version))
        for i, (kind, step, rec) in enumerate(records(n, seed)):
            t = t0 + i * 2.718281  # time.time() of each add_scalar: every byte of the double moves
            for key, v in rec.items():
                t += 0.000137
                if kind == "eval" and key.startswith("eval_"):
                    tag = "eval/" + key[5:]
                else:
                    tag = "train/" + key
                buf += frame(scalar_event(t, step, tag, v))
                scalars += 1
            if len(buf) > 1 << 22:
                f.write(buf)
                buf = bytearray()
        f.write(buf)
    return path, scalars


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("directory")
    ap.add_argument("--records", type=int, default=20000, help="train records (an eval every 100)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jsonl", help="also write the same records as JSON lines here")
    ap.add_argument("--time", type=int, default=0, metavar="N", help="load both N times (needs --jsonl)")
    a = ap.parse_args()
    path, scalars = write_events(a.directory, a.records, a.seed)
    print(f"{path}: {scalars} scalars, {Path(path).stat().st_size} bytes")
    if a.jsonl:
        size = write_jsonl(a.jsonl, a.records, a.seed)
        print(f"{a.jsonl}: {size} bytes")
        if a.time:
            _time(a.directory, a.jsonl, a.time, a.records)
    return 0


def _time(tb: str, jsonl: str, n: int, records_: int) -> None:
    import statistics
    import time

    from sfttop.core.config import Config
    from sfttop.core.records import Kind
    from sfttop.core.run import Monitor

    def load(path: str) -> float:
        mon = Monitor([path], Config())
        t = time.perf_counter()
        mon.load_all()
        took = time.perf_counter() - t
        assert mon.runs[0].data.count(Kind.TRAIN) == records_
        return took

    times: dict[str, list[float]] = {"tensorboard": [], "jsonl": []}
    for _ in range(n):
        times["tensorboard"].append(load(tb))
        times["jsonl"].append(load(jsonl))
    t_tb, t_js = statistics.median(times["tensorboard"]), statistics.median(times["jsonl"])
    print(f"load_all, median of {n}: tensorboard {t_tb:.3f} s, jsonl {t_js:.3f} s, ratio {t_tb / t_js:.2f}")
    print(f"per record: tensorboard {t_tb / records_ * 1e6:.1f} us, jsonl {t_js / records_ * 1e6:.1f} us")


if __name__ == "__main__":
    raise SystemExit(main())
