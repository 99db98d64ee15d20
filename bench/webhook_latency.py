#!/usr/bin/env python3
"""Does a hanging chat webhook delay ``sfttop --follow``'s record output? (issue 19)

    python bench/webhook_latency.py            # 20 appended lines per case
    python bench/webhook_latency.py --lines 50 --hang 10

Runs ``sfttop --follow --format jsonl`` on a log that has just hit a NaN, once posting to a local
stand-in Feishu webhook that sits on every request for ``--hang`` seconds, once with no webhook,
and prints the time from appending a line to its record appearing on stdout (median and max).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from test_webhook_follow import NAN, Follow, hf

from hookserver import HookServer, Reply


def measure(log: Path, lines: int, hang: float | None) -> tuple[list[float], int]:
    log.write_bytes(b"".join(hf(i) for i in range(1, 21)))
    with HookServer([Reply(delay=hang)] * 10 if hang else None) as srv:
        args = ("--alert-webhook", srv.url(), "--alert-webhook-format", "feishu") if hang else ()
        f = Follow(*args, str(log))
        try:
            f.wait(lambda: len(f.records()) >= 20)
            with open(log, "ab") as fh:
                fh.write(NAN % 0.021)
            f.wait(lambda: len(f.findings()) >= 1)
            time.sleep(2.2)  # past the digest window: the request is now hanging
            lat: list[float] = []
            for i in range(22, 22 + lines):
                t = time.monotonic()
                with open(log, "ab") as fh:
                    fh.write(hf(i))
                f.wait(lambda i=i: any(x.get("step") == i for _t, x in f.lines if x.get("kind") == "train"))
                lat.append(next(tt for tt, x in f.lines if x.get("kind") == "train" and x.get("step") == i) - t)
        finally:
            f.stop()
        return lat, len(srv.seen)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=20)
    ap.add_argument("--hang", type=float, default=5.0)
    args = ap.parse_args()
    log = Path(tempfile.mkdtemp()) / "train.log"
    for label, hang in ((f"webhook hanging {args.hang:g} s", args.hang), ("no webhook", None)):
        lat, n = measure(log, args.lines, hang)
        print(f"{label:24} requests {n}  record latency median {statistics.median(lat) * 1000:.0f} ms, "
              f"max {max(lat) * 1000:.0f} ms over {len(lat)} lines")
    return 0


if __name__ == "__main__":
    sys.exit(main())
