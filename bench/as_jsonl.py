#!/usr/bin/env python3
"""Any log sfttop reads, written back as sfttop's own JSON lines: the same records (step,
every metric, epoch), one object a line, so that a format's ``--report`` can be timed against
the JSON-lines report of exactly what it holds (``bench.py``'s ``formats`` figure).

    python bench/as_jsonl.py LOG OUT.jsonl        # LOG: a file or run directory sfttop reads
"""

from __future__ import annotations

import json
import sys

from sfttop.core.config import Config
from sfttop.core.records import Kind, expand
from sfttop.core.run import Run


def convert(path: str, out: str) -> int:
    run = Run("r", path, Config())
    n = 0
    with open(out, "w") as f:
        for _ in range(1_000_000):
            up = run.poll()
            for rec in expand(up.records):
                obj: dict[str, object] = {"step": rec.step, **rec.metrics}
                if rec.epoch is not None and rec.kind is not Kind.SUMMARY:
                    obj["epoch"] = rec.epoch
                f.write(json.dumps(obj) + "\n")  # (NaN as NaN: sfttop reads it)
                n += 1
            if run.loaded and not up.records:
                break
    return n


def main() -> int:
    n = convert(sys.argv[1], sys.argv[2])
    print(f"{sys.argv[2]}: {n} records")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
