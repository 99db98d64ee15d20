#!/usr/bin/env python3
"""Where a one-process ``--report`` load spends its CPU time, stage by stage.

Loads each log as ``--report`` does in one process (``Run.poll`` until loaded, 4 MiB a poll)
and charges the CPU time (``time.process_time``) of each call to its stage:

  read       FileTail.poll: pread, the tail's split at the last newline
  parse      LogParser.feed_chunk / flush: finding records among tqdm redraws, orjson, columns
  store      RunData.add_block / add: the series, their compaction into min/max history
  diagnose   Diagnoser.observe_block / observe: every rule, record by record or in bulk
  checklist  Checklist.advance: the windows judged as they close

The calls are per chunk or per block, so the wrappers cost next to nothing. Best of
``--repeat`` loads, each with fresh state. ``--hold`` first applies ``memory.hold_freed()`` (as
``--report`` does); without it glibc's default heap settings apply.

    python bench/stages.py LOG [LOG ...] [--repeat 3] [--hold]    # one JSON line per log
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from sfttop.core import checklist, diagnose, memory, parse, series, tail
from sfttop.core.config import load_config
from sfttop.core.run import Run

STAGES: dict[str, tuple[tuple[type, str], ...]] = {
    "read": ((tail.FileTail, "poll"),),
    "parse": ((parse.LogParser, "feed_chunk"), (parse.LogParser, "flush")),
    "store": ((series.RunData, "add_block"), (series.RunData, "add")),
    "diagnose": ((diagnose.Diagnoser, "observe_block"), (diagnose.Diagnoser, "observe")),
    "checklist": ((checklist.Checklist, "advance"),),
}


def _charge(acc: dict[str, float], stage: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    clock = time.process_time

    def timed(*a: Any, **k: Any) -> Any:
        t = clock()
        try:
            return fn(*a, **k)
        finally:
            acc[stage] += clock() - t

    return timed


def load(path: str, acc: dict[str, float]) -> float:
    """CPU seconds to load ``path`` in this process, stages charged to ``acc``."""
    run = Run(os.path.basename(path), path, load_config(None))
    gc.collect()
    t = time.process_time()
    while not run.loaded:
        run.poll(4 << 20)
        if run.source.error is not None:
            raise SystemExit(f"{path}: {run.source.error}")
    return time.process_time() - t


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("logs", nargs="+")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--hold", action="store_true", help="memory.hold_freed() first, as --report does")
    args = ap.parse_args()
    held = memory.hold_freed() if args.hold else False
    acc: dict[str, float] = defaultdict(float)
    for stage, calls in STAGES.items():
        for cls, name in calls:
            setattr(cls, name, _charge(acc, stage, getattr(cls, name)))
    for path in args.logs:
        best: tuple[float, dict[str, float]] | None = None
        for _ in range(args.repeat):
            acc.clear()
            total = load(path, acc)
            if best is None or total < best[0]:
                best = (total, dict(acc))
        assert best is not None
        total, parts = best
        row: dict[str, Any] = {"log": os.path.basename(path), "held": held, "total": round(total, 3)}
        row.update({s: round(parts.get(s, 0.0), 3) for s in STAGES})
        row["other"] = round(total - sum(parts.values()), 3)
        sys.stdout.write(json.dumps(row) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
