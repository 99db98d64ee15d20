"""Every Markdown report, not only the golden ones, reads in CommonMark as the lists and tables it
means: the TRL fixtures, every public log of ../shared/logs (every format, pathologies included),
in English and Chinese. The golden tests pin six reports byte for byte; this sweeps the shapes no
golden has (a crash's quoted error line, a Megatron hang, findings with advice in zh)."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import REAL, SHARED
from sfttop.core import i18n
from sfttop.core.config import Config
from sfttop.core.report import build, render_md

NOW = 2e9  # far after every log: finished runs stay finished, the rest are judged as stalled
LOGS = sorted(p for p in REAL.glob("*/*") if p.is_dir()) + (
    sorted(p for p in SHARED.iterdir() if p.is_dir()) if SHARED.is_dir() else []
)


@pytest.fixture(params=["en", "zh"])
def lang(request: pytest.FixtureRequest) -> str:
    i18n.set_lang(request.param)  # (conftest puts English back after the test)
    return str(request.param)


def structure_faults(text: str) -> list[str]:
    """What CommonMark (with GFM tables, as GitHub renders) reads differently from the lines."""
    from markdown_it import MarkdownIt

    tokens = MarkdownIt("commonmark").enable("table").parse(text)
    faults = []
    items = sum(t.type == "list_item_open" for t in tokens)
    bullets = sum(1 for line in text.splitlines() if line.startswith("- "))
    if items != bullets:
        faults.append(f"{items} list items for {bullets} '- ' lines")
    tables = sum(t.type == "table_open" for t in tokens)
    rules = sum(1 for line in text.splitlines() if line.startswith("|--"))
    if tables != rules:
        faults.append(f"{tables} tables for {rules} header rules")
    for i, t in enumerate(tokens):
        if t.type == "inline" and tokens[i - 2].type == "list_item_open" and "\n" in t.content:
            faults.append(f"a list item swallowed the next line: {t.content[:120]!r}")
    return faults


@pytest.mark.parametrize("log", LOGS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_markdown_report_is_the_lists_and_tables_it_means(log: Path, lang: str) -> None:
    report, _code = build([str(log)], Config(), clock=lambda: NOW)
    assert report["runs"], log
    assert structure_faults(render_md(report)) == []


def test_the_sweep_would_catch_a_run_on_item() -> None:
    text = "## Overall\n\n- eval loss close to train loss\n! lr 0: too small\n"
    assert structure_faults(text) == ["a list item swallowed the next line: 'eval loss close to train loss\\n! lr 0: too small'"]
