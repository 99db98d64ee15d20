"""Golden files: the three report formats on real TRL logs, byte for byte.

Regenerate after an intended change with ``SFTTOP_UPDATE_GOLDEN=1 pytest tests/e2e/test_golden.py``
and read the diff: it is the change a user will see.
"""

from __future__ import annotations

import os

import orjson
import pytest

from helpers import GOLDEN, ROOT
from sfttop.core.config import Config
from sfttop.core.report import build, render_md, render_text

CASES = ["tf5/healthy", "tf5/overfit", "tf4/nan_filtered", "tf4/crash", "tf4/resumed", "tf5/explode"]


def _render(case: str, fmt: str) -> str:
    path = f"tests/fixtures/real/{case}/train.log"
    # Now = the log's own mtime: a finished or crashed run is never judged stalled, and nothing
    # in the report depends on when the test runs.
    mtime = os.stat(ROOT / path).st_mtime
    report, _ = build([path], Config(), clock=lambda: mtime)
    if fmt == "json":
        return orjson.dumps(report, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode() + "\n"
    return render_md(report) if fmt == "md" else render_text(report)


@pytest.mark.parametrize("fmt", ["json", "txt", "md"])
@pytest.mark.parametrize("case", CASES)
def test_report_matches_golden(case: str, fmt: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    got = _render(case, "json" if fmt == "json" else fmt)
    golden = GOLDEN / f"{case.replace('/', '-')}.{fmt}"
    if os.environ.get("SFTTOP_UPDATE_GOLDEN"):
        golden.write_text(got)
    assert golden.exists(), f"missing {golden}; run with SFTTOP_UPDATE_GOLDEN=1"
    assert got == golden.read_text()


@pytest.mark.parametrize("case", CASES)
def test_markdown_renders_as_the_lists_and_tables_it_means(case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """CommonMark (with GFM tables, as GitHub renders) reads each report's structure as meant:
    every "- " line is a list item of its own, every table is a table, nothing runs on."""
    from markdown_it import MarkdownIt

    monkeypatch.chdir(ROOT)
    text = _render(case, "md")
    tokens = MarkdownIt("commonmark").enable("table").parse(text)
    items = sum(t.type == "list_item_open" for t in tokens)
    assert items == sum(1 for line in text.splitlines() if line.startswith("- "))
    tables = sum(t.type == "table_open" for t in tokens)
    assert tables == sum(1 for line in text.splitlines() if line.startswith("|---") or line.startswith("|--"))
    # no list item's text swallowed a following line (a lazy continuation)
    inline = [t.content for i, t in enumerate(tokens) if t.type == "inline" and tokens[i - 2].type == "list_item_open"]
    assert all("\n" not in x for x in inline), [x for x in inline if "\n" in x][:1]
