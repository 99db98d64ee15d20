"""Snapshot tests: the whole screen at 120x36, 80x24 and a 60x15 tmux pane.

Deterministic: replay mode reads every log to its end before the first paint, with a fixed
clock; the logs are the real fixtures (written by transformers 5.x) and the seeded demo writer.
Regenerate with ``pytest tests/test_tui_snapshots.py --snapshot-update`` after looking at them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sfttop.core.config import Config
from sfttop.core.demo import DemoWriter
from sfttop.tui.app import SfttopApp

REAL = Path(__file__).parent / "fixtures" / "real" / "tf5"
THREE = [str(REAL / n / "train.log") for n in ("healthy", "explode", "overfit")]

SnapCompare = Callable[..., bool]


def real_app() -> SfttopApp:
    return SfttopApp(THREE, Config(), replay=True)


@pytest.mark.parametrize(
    "size,press",
    [
        ((120, 36), ()),
        ((120, 36), ("2", "m")),  # explode: grad_norm with its 10/20 reference lines
        ((80, 24), ("2",)),
        ((60, 15), ("2",)),
        ((80, 24), ("3", "v")),  # the checklist in place of the chart
        ((100, 30), ("question_mark",)),
    ],
    ids=["wide", "wide-grad-norm", "80x24", "60x15", "80x24-checklist", "help"],
)
def test_real_logs(snap_compare: SnapCompare, size: tuple[int, int], press: tuple[str, ...]) -> None:
    assert snap_compare(real_app(), terminal_size=size, press=press)


@pytest.fixture
def demo_logs(tmp_path: Path) -> str:
    d = DemoWriter(root=str(tmp_path), history=110)
    d.write_history()
    return d.glob


@pytest.mark.parametrize("size", [(120, 36), (60, 15)], ids=["wide", "60x15"])
def test_demo_history(snap_compare: SnapCompare, demo_logs: str, size: tuple[int, int]) -> None:
    app = SfttopApp([demo_logs], Config(), replay=True, title_suffix=" (demo)")
    assert snap_compare(app, terminal_size=size)


def test_overlay_smoothed(snap_compare: SnapCompare, demo_logs: str) -> None:
    app = SfttopApp([demo_logs], Config(), replay=True)
    press: Any = ("2", "o", "s")
    assert snap_compare(app, terminal_size=(120, 36), press=press)
