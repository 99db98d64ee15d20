#!/usr/bin/env python3
"""The floor for ``--report``: the least any monitor must do with a log's records.

Reads a JSON-lines file (the same records as the log under test), one ``orjson.loads`` per
line, and keeps every value in a per-metric ``array('d')``: parsing and storing, minus finding
the records in the log's noise, diagnosing and reporting. Run as a process of its own, like
``sfttop --report``, so both figures include interpreter start-up.

    python bench/floor.py records.jsonl    # prints {"values": N, "metrics": M, "seconds": S}
"""

from __future__ import annotations

import sys
import time
from array import array

import orjson


def floor(path: str) -> dict[str, array[float]]:
    loads = orjson.loads
    series: dict[str, array[float]] = {}
    with open(path, "rb") as f:
        for line in f:
            d = loads(line)
            for k, v in d.items():
                a = series.get(k)
                if a is None:
                    a = series[k] = array("d")
                a.append(v)
    return series


def main() -> int:
    t0 = time.perf_counter()
    series = floor(sys.argv[1])
    dt = time.perf_counter() - t0
    values = sum(len(a) for a in series.values())
    sys.stdout.write(orjson.dumps({"values": values, "metrics": len(series), "seconds": round(dt, 4)}).decode() + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
