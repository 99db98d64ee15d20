"""Shared by the tests: where the fixtures are, and reading a file through the real tailer and
parser (the test modules import only from here, ``synth`` and the fake servers, never from each
other or from ``bench/``)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest

from sfttop.core.diagnose import Diagnoser
from sfttop.core.discover import logging_steps_near
from sfttop.core.parse import LogParser
from sfttop.core.records import Event, EventKind, Item, Kind, Record, expand
from sfttop.core.series import RunData
from sfttop.core.tail import FileTail

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
FIXTURES = TESTS / "fixtures"
REAL = FIXTURES / "real"  # logs written by the real transformers/TRL libraries (fixtures/gen)
FORMATS = FIXTURES / "formats"
GOLDEN = TESTS / "golden"
# The public logs of ../shared/logs (beside the clone in CI); their tests skip without them.
SHARED = ROOT.parent / "shared" / "logs"
REAL_LOGS = sorted(str(p) for p in REAL.glob("*/*/train.log"))

def read_all(
    path: str, budget: int = 1 << 16, use_state: bool = True, blocks: bool = True
) -> tuple[LogParser, RunData, list[Record], list[Event]]:
    tail = FileTail(path)
    parser = LogParser(blocks=blocks)
    if use_state:
        parser.interval = logging_steps_near(path)
    data = RunData()
    records: list[Record] = []
    events: list[Event] = []
    while True:
        chunk = tail.poll(budget)
        recs: list[Item] = []
        if chunk.data:
            parser.feed_chunk(chunk.data, chunk.base, recs, events)
        parser.flush(recs, final=chunk.eof)
        for r in recs:
            data.add(r)
        records.extend(expand(recs))
        if chunk.eof and not chunk.grew:
            break
    tail.close()
    return parser, data, records, events


def parse_lines(lines: list[bytes]) -> tuple[LogParser, list[Record], list[Event]]:
    parser = LogParser()
    recs: list[Record] = []
    evs: list[Event] = []
    off = 0
    for line in lines:
        parser.feed(line, off, recs, evs)
        off += len(line) + 1
    parser.flush(recs)
    return parser, recs, evs


def diagnose_all(records: Iterable[Record]) -> tuple[RunData, Diagnoser]:
    """Store and diagnose records in order, as a Run does (without a file)."""
    data, diag = RunData(), Diagnoser()
    for r in records:
        data.add(r)
        diag.observe(r)
    return data, diag


def shared(rel: str) -> Path:
    path = SHARED / rel
    if not path.exists():
        pytest.skip(f"{path} not present")
    return path


def parse(path: Path, budget: int = 1 << 16) -> tuple[str, list[Record], list[Record], list[Event], int]:
    """(format, train records, eval records, events other than max_steps, skipped lines)."""
    parser, _, records, events = read_all(str(path), budget=budget, use_state=False)
    train = [r for r in records if r.kind is Kind.TRAIN]
    evals = [r for r in records if r.kind is Kind.EVAL]
    return parser.format, train, evals, [e for e in events if e.kind is not EventKind.MAX_STEPS], parser.stats.skipped


def max_steps(path: Path) -> list[int]:
    _, _, _, events = read_all(str(path), use_state=False)
    return [e.total for e in events if e.kind is EventKind.MAX_STEPS and e.total is not None]


def report(path: Path, *extra: str) -> tuple[dict, int]:
    p = subprocess.run(
        [sys.executable, "-m", "sfttop", "--report", "--format", "json", *extra, str(path)],
        capture_output=True, text=True, timeout=120,
    )
    assert "Traceback" not in p.stderr, p.stderr
    return json.loads(p.stdout), p.returncode


def critical(run: dict) -> set[str]:
    return {f["code"] for f in run["findings"] if f["severity"] == "critical"}


# A live app's poll and rescan paces in the tests: fast, so appended lines show in a few frames.
LIVE = {"interval": 0.05, "rescan_seconds": 0.1}


async def wait_for(pilot: Any, cond: Callable[[], bool], timeout: float = 8.0) -> bool:
    """Let a running app's frames go by until ``cond()`` holds (True) or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        await pilot.pause(0.05)
        if cond():
            return True
    return False


def screen_lines(app: Any) -> list[str]:
    """A running app's screen as plain text, as Textual's own screenshot export composes it."""
    from rich.console import Console

    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), force_terminal=True, color_system=None,
                      record=True, legacy_windows=False, safe_box=False)
    console.print(app.screen._compositor.render_update(full=True))
    lines: list[str] = console.export_text().split("\n")[:height]
    return lines


def assessment_text(view: Any, width: int, styles: dict[str, str]) -> Any:
    """The whole assessment (``AssessmentView``) as one Rich text, its Chinese broken at ``width``:
    what Textual's own wrap was given before the panel wrapped line by line (the tests hold the
    panel's lines against Textual's wrap of this)."""
    from rich.text import Text

    from sfttop.tui.cells import wrap_text
    from sfttop.tui.widgets.assessment import assessment_lines

    return wrap_text(Text("\n", overflow="fold").join(assessment_lines(view, styles)), width)
