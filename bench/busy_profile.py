"""Splits a py-spy profile of the TUI into the stages of issue 20's breakdown.

    py-spy record --pid PID --rate 200 --duration 20 --format raw --output prof.txt
    python bench/busy_profile.py prof.txt

Each sampled stack is charged to one stage, the first of these that any of its frames is in
(so a diagnoser check called by the checklist is checklist time, orjson under the parser is
parsing): checklist, diagnosing, parsing, tailing, absorbing (the series store, Run._absorb),
view building (tui/snapshot, panels, plotdata, assessment), rendering (Textual, Rich, plotext,
the widgets), other (the event loop, messages, threads). Samples of a thread waiting (in
select, a condition, a queue) are not counted.
"""

from __future__ import annotations

import re
import sys
from collections import Counter

STAGES: list[tuple[str, re.Pattern[str]]] = [
    ("checklist", re.compile(r"core/checklist")),
    ("diagnosing", re.compile(r"core/diagnose|core/checks")),
    ("parsing", re.compile(r"core/parse|core/formats")),
    ("tailing", re.compile(r"core/tail\.py|core/wake\.py|\(?poll \(.*core/run\.py")),
    ("absorbing", re.compile(r"core/series|_absorb \(|_record \(")),
    ("view building", re.compile(r"tui/snapshot|tui/panels|tui/plotdata|core/assess|_build_views|run_row")),
    ("rendering", re.compile(r"[(/ ](textual|rich|plotext)/|tui/widgets|tui/chart_render")),
]
# A thread sampled in one of these is waiting, not working (py-spy's own idle filter misses some).
IDLE = re.compile(r"^(Condition\.wait|Event\.wait|\w*Selector\.select|Queue\.get|select|poll|epoll) \(")


def stage(stack: str) -> str:
    if IDLE.match(stack.rsplit(";", 1)[-1]):
        return "idle"
    for name, pat in STAGES:
        if pat.search(stack):
            return name
    return "other"


def main(path: str) -> int:
    counts: Counter[str] = Counter()
    for line in open(path, encoding="utf-8", errors="replace"):
        stack, _, n = line.rstrip("\n").rpartition(" ")
        if not stack or not n.isdigit():
            continue
        counts[stage(stack)] += int(n)
    idle = counts.pop("idle", 0)
    total = sum(counts.values()) or 1
    for name, n in counts.most_common():
        print(f"{name:14s} {n:7d} samples  {100 * n / total:5.1f}%")
    print(f"{'total':14s} {total:7d}  (and {idle} samples of threads waiting, not counted)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
