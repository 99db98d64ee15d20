"""Chinese golden reports, byte for byte, and the text report's tables aligned in display cells.

Regenerate after an intended change with ``SFTTOP_UPDATE_GOLDEN=1 pytest tests/e2e/test_golden_zh.py``
and read the diff: it is the change a Chinese reader will see.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path

import pytest
from rich.cells import cell_len

from helpers import GOLDEN, REAL, ROOT
from sfttop.core.config import Config
from sfttop.core.report import build, render_md, render_text

CASES = ["tf5/healthy", "tf4/nan_filtered", "tf5/overfit"]
RUNS = sorted(p for p in REAL.glob("*/*") if p.is_dir())
_RULE = re.compile(r"^-+(  -+)+$")


pytestmark = pytest.mark.usefixtures("zh")  # (conftest: Chinese for every test here)


def _report(path: str) -> dict[str, object]:
    # Now = the log's own mtime, so that nothing in the report depends on when the test runs.
    mtime = os.stat(ROOT / path).st_mtime
    report, _code = build([path], Config(), clock=lambda: mtime)
    return report


@pytest.mark.parametrize("fmt", ["txt", "md"])
@pytest.mark.parametrize("case", CASES)
def test_chinese_report_matches_golden(case: str, fmt: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    report = _report(f"tests/fixtures/real/{case}/train.log")
    got = render_md(report) if fmt == "md" else render_text(report)
    golden = GOLDEN / f"zh-{case.replace('/', '-')}.{fmt}"
    if os.environ.get("SFTTOP_UPDATE_GOLDEN"):
        golden.write_text(got, encoding="utf-8")
    assert golden.exists(), f"missing {golden}; run with SFTTOP_UPDATE_GOLDEN=1"
    assert got == golden.read_text(encoding="utf-8")


def tables(text: str) -> Iterator[tuple[list[tuple[int, int]], list[str]]]:
    """Each table of a text report: its columns as (first cell, end cell) read off the rule
    under the header, and its lines (the header, the rule and the rows down to a blank line)."""
    lines = text.split("\n")
    for i, line in enumerate(lines):
        if i == 0 or not _RULE.match(line):
            continue
        spans = [(m.start(), m.end()) for m in re.finditer(r"-+", line)]
        block = [lines[i - 1], line]
        for row in lines[i + 1:]:
            if not row.strip():
                break
            block.append(row)
        yield spans, block


def misaligned(spans: list[tuple[int, int]], row: str) -> str | None:
    """Why ``row`` leaves the columns, or None: every cell starts in its column's first cell,
    so the two cells of space before it are spaces and no wide character straddles them."""
    starts: dict[int, str] = {}  # display cell -> the character that starts there
    at = 0
    for ch in row:
        starts[at] = ch
        at += cell_len(ch)
    for (_s, end), (start, _e) in pairwise(spans):
        if at <= end:
            return None  # the row ends before this column (an empty last cell)
        gutter = [starts.get(c) for c in range(end, start)]
        if gutter != [" "] * (start - end) or (starts.get(start, " ") == " " and at > start):
            return f"column at cell {start}: {row!r}"
    return None


@pytest.mark.parametrize("run", RUNS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_table_of_the_chinese_text_report_keeps_its_columns(run: Path) -> None:
    """A width counted in characters instead of cells shifts every column after a CJK word."""
    text = render_text(_report(str(run.relative_to(ROOT))))
    found = list(tables(text))
    assert len(found) >= 3, text  # the assessment and at least two checklist windows
    for spans, block in found:
        bad = [why for row in block if (why := misaligned(spans, row))]
        assert bad == [], "\n".join(block)


def test_the_alignment_check_catches_a_width_counted_in_characters() -> None:
    spans = [(0, 4), (6, 12), (14, 18)]
    assert misaligned(spans, "通过  检查项  详情") is None
    assert misaligned(spans, "通过") is None  # the rest of the row empty
    assert misaligned(spans, "通过    检查项    详情") is not None  # padded to 4 characters, not 4 cells
    assert misaligned(spans, "通过  检查项目详情") is not None  # a cell runs into the next column
