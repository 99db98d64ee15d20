"""Golden files: the three report formats on real TRL logs, byte for byte.

Regenerate after an intended change with ``SFTTOP_UPDATE_GOLDEN=1 pytest tests/test_golden.py``
and read the diff: it is the change a user will see.
"""

from __future__ import annotations

import os
from pathlib import Path

import orjson
import pytest

from sfttop.core.config import Config
from sfttop.core.report import build, render_md, render_text

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).parent / "golden"
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
