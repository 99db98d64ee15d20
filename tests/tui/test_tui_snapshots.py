"""Snapshot tests: the whole screen at 120x36, 80x24 and a 60x15 tmux pane.

Deterministic: replay mode reads every log to its end before the first paint, with a fixed
clock; the logs are the real fixtures (written by transformers 5.x) and the seeded demo writer.
Regenerate with ``pytest tests/tui/test_tui_snapshots.py --snapshot-update`` after looking at them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from helpers import REAL
from sfttop.core import i18n
from sfttop.core.config import Config
from sfttop.core.demo import DemoWriter
from sfttop.tui.app import SfttopApp

REAL = REAL / "tf5"
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


ALL_TF5 = sorted(str(p) for p in REAL.glob("*/train.log"))  # ten real runs: healthy, exploding, NaN, overfit...
NAN_MASKED = [str(REAL / n / "train.log") for n in ("healthy", "nan_filtered", "explode")]


@pytest.mark.parametrize("size", [(120, 36), (80, 24), (60, 15)], ids=["wide", "80x24", "60x15"])
def test_masked_nan_is_never_a_zero(snap_compare: SnapCompare, size: tuple[int, int]) -> None:
    """The HF Trainer logs 'loss': 0 once the loss is NaN: ✕ on the chart, 'NaN (masked)' on the
    cards (the 60x15 pane shows them with v), the other runs' alarms in the title."""
    app = SfttopApp(NAN_MASKED, Config(), replay=True)
    press: Any = ("2",) if size != (60, 15) else ("2", "v")
    assert snap_compare(app, terminal_size=size, press=press)


@pytest.mark.parametrize("size", [(120, 36), (80, 24), (60, 15)], ids=["wide", "80x24", "60x15"])
def test_overlay_of_ten_real_runs(snap_compare: SnapCompare, size: tuple[int, int]) -> None:
    """Exploded, NaN and healthy runs together: log y by itself, every name in the legend."""
    app = SfttopApp(ALL_TF5, Config(), replay=True)
    assert snap_compare(app, terminal_size=size, press=("o",))


def test_overlay_without_colour(snap_compare: SnapCompare, monkeypatch: pytest.MonkeyPatch) -> None:
    """NO_COLOR: each run keeps its own glyph along its line and in the legend."""
    monkeypatch.setenv("NO_COLOR", "1")
    app = SfttopApp(THREE, Config(), replay=True)
    assert snap_compare(app, terminal_size=(120, 36), press=("o",))


@pytest.mark.parametrize("size", [(80, 24), (60, 15)], ids=["80x24", "60x15"])
def test_healthy_run_selected_others_in_trouble(snap_compare: SnapCompare, size: tuple[int, int]) -> None:
    """A healthy run on screen, ten runs behind it: their worst states stay in the title."""
    app = SfttopApp(ALL_TF5, Config(), replay=True)
    healthy = ALL_TF5.index(str(REAL / "healthy" / "train.log")) + 1
    assert snap_compare(app, terminal_size=size, press=(str(healthy),))


def test_a_log_sfttop_cannot_read(snap_compare: SnapCompare, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another program's log: listed as '… wait', never '✔ ok'; the chart says why it is empty."""
    monkeypatch.chdir(tmp_path)  # a relative path: the same words on screen in every test run
    Path("nginx.log").write_text('127.0.0.1 - - [01/Jan/2026:00:00:00 +0000] "GET / HTTP/1.1" 200 612\n' * 20)
    app = SfttopApp(["nginx.log", THREE[0]], Config(), replay=True)
    assert snap_compare(app, terminal_size=(80, 24))


@pytest.mark.parametrize(
    "size,press",
    [
        ((120, 36), ("2",)),  # explode: banner, checklist and assessment in Chinese
        ((80, 24), ("2",)),
        ((60, 15), ("2",)),
        ((80, 24), ("3", "v")),  # overfit: the checklist in place of the chart
        ((60, 15), ("2", "v", "v", "v")),  # the assessment alone in a small pane
        ((100, 30), ("question_mark",)),
    ],
    ids=["wide", "80x24", "60x15", "80x24-checklist", "60x15-assessment", "help"],
)
def test_chinese(snap_compare: SnapCompare, size: tuple[int, int], press: tuple[str, ...]) -> None:
    """--lang zh: every word a person reads in Chinese, CJK text two cells wide in every box."""
    i18n.set_lang("zh")  # (conftest puts English back after the test)
    assert snap_compare(real_app(), terminal_size=size, press=press)


def test_chinese_overlay_of_ten_real_runs(snap_compare: SnapCompare) -> None:
    i18n.set_lang("zh")
    app = SfttopApp(ALL_TF5, Config(), replay=True)
    assert snap_compare(app, terminal_size=(120, 36), press=("o",))


def test_chinese_demo(snap_compare: SnapCompare, demo_logs: str) -> None:
    """sfttop --demo --lang zh, as it first shows."""
    i18n.set_lang("zh")
    app = SfttopApp([demo_logs], Config(), replay=True, title_suffix=i18n._(" (demo)"))  # as cli/ passes it
    assert snap_compare(app, terminal_size=(120, 36))
