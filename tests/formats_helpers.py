"""Shared by the line-format tests: where the real logs are, and reading one through the parser."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import read_all
from sfttop.core.records import Event, EventKind, Kind, Record

FIXTURES = Path(__file__).parent / "fixtures" / "formats"
# The public logs of ../shared/logs (beside the clone in CI); their tests skip without them.
SHARED = Path(__file__).resolve().parents[2] / "shared" / "logs"


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
