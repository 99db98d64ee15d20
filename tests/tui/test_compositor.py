"""tui/compositor.py: a partial update renders only the changed spans' lines, and leaves on the
terminal exactly what Textual's own compositor leaves for the same changes."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from textual._compositor import ChopsUpdate, Compositor

from helpers import LIVE, wait_for
from sfttop.core.config import Config
from sfttop.tui import compositor
from sfttop.tui.app import SfttopApp
from sfttop.tui.compositor import SpanCompositor
from synth import write_log


def _append(path: Path, first: int, n: int) -> None:
    with open(path, "a") as f:
        for i in range(first, first + n):
            rec = {"loss": round(0.3 + 0.5 / i, 4), "grad_norm": round(1.0 + 0.1 * (i % 4), 3),
                   "learning_rate": 2e-5, "entropy": 1.5, "num_tokens": float(i * 2048),
                   "mean_token_accuracy": 0.8, "epoch": round(i * 0.01, 3)}
            f.write(repr(rec) + "\n")
            if i % 10 == 0:
                f.write(repr({"eval_loss": round(0.4 + 0.5 / i, 4), "epoch": rec["epoch"]}) + "\n")


@pytest.mark.parametrize("size", [(120, 36), (60, 16)])
async def test_a_partial_update_writes_what_textuals_own_compositor_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, size: tuple[int, int]
) -> None:
    """Live runs write while keys change the view: each partial update is made by
    ``SpanCompositor`` and again, from the same changed regions, by Textual's ``Compositor``;
    the two write the same cells to the terminal (and ours no more bytes), and ours rendered
    fewer widget lines."""
    for name in ("alpha", "beta", "gamma"):
        write_log(tmp_path / name / "train.log", 30)
    compared: list[tuple[str, str]] = []
    rendered = {"ours": 0, "textual": 0}
    ours_update = SpanCompositor.render_partial_update
    counting: list[str] = []

    def both(self: SpanCompositor) -> ChopsUpdate | None:
        regions = set(self._dirty_regions)
        counting[:] = ["ours"]
        ours = ours_update(self)
        self._dirty_regions.update(regions)
        counting[:] = ["textual"]
        textual = Compositor.render_partial_update(self)
        counting.clear()
        if ours is None or textual is None:
            assert ours is None and textual is None
            return ours
        console = app.console
        compared.append((ours.render_segments(console), textual.render_segments(console)))
        return ours

    def counted(get_renders: Any) -> Any:
        def wrapper(self: Compositor, crop: Any = None) -> Any:
            for region, clip, strips in get_renders(self, crop):
                if counting:
                    rendered[counting[0]] += len(strips)
                yield region, clip, strips

        return wrapper

    monkeypatch.setattr(SpanCompositor, "render_partial_update", both)
    monkeypatch.setattr(SpanCompositor, "_get_renders", counted(SpanCompositor._get_renders))
    # (Textual's own, called on the same compositor object for the reference update)
    monkeypatch.setattr(Compositor, "_get_renders", counted(Compositor._get_renders))
    app = SfttopApp([str(tmp_path / "*" / "train.log")], Config(), **LIVE)
    async with app.run_test(size=size) as pilot:
        assert isinstance(app.screen._compositor, SpanCompositor)
        assert await wait_for(pilot, lambda: len(app.monitor.runs) == 3 and not app.monitor.loading)
        step = 31
        for key in ("", "tab", "v", "", "v", "tab", "v", "m", "o", "v"):
            if key:
                await pilot.press(key)
            for name in ("alpha", "beta", "gamma"):
                _append(tmp_path / name / "train.log", step, 3 if name == "alpha" else 1)
            step += 3
            before = len(compared)
            assert await wait_for(pilot, lambda before=before: len(compared) > before, 5.0)  # type: ignore[misc]
    assert len(compared) >= 10
    for ours, textual in compared:
        assert _cells(ours) == _cells(textual)
        assert len(ours) <= len(textual)
    assert rendered["ours"] < rendered["textual"]


_CSI = re.compile(r"\x1b\[([0-9;?]*)([A-Za-z])")


def _cells(output: str) -> dict[tuple[int, int], tuple[str, str]]:
    """What ``output`` writes on a terminal: each cell written, (row, column) -> (character, the
    SGR codes in force). Two updates that write the same cells leave the same screen (Textual's
    own writes an empty cursor move where a widget's strip is cut off at a span's edge)."""
    cells: dict[tuple[int, int], tuple[str, str]] = {}
    y = x = 0
    sgr = ""
    pos = 0
    for m in _CSI.finditer(output):
        for ch in output[pos : m.start()]:
            cells[(y, x)] = (ch, sgr)
            x += 1
        pos = m.end()
        args, final = m.groups()
        if final == "H":
            row, col = [*args.split(";"), "1", "1"][:2]
            y, x = int(row or 1), int(col or 1)
        elif final == "m":
            sgr = "" if args in ("", "0") else sgr + ";" + args
    for ch in output[pos:]:
        cells[(y, x)] = (ch, sgr)
        x += 1
    return cells


def test_covers() -> None:
    assert compositor._covers([(0, 40), (40, 120)], 10, 100)
    assert compositor._covers([(40, 120), (0, 41)], 0, 120)
    assert not compositor._covers([(0, 40), (41, 120)], 10, 100)  # (a cell between them)
    assert not compositor._covers([(0, 40)], 10, 41)
    assert not compositor._covers([], 3, 4)
    assert compositor._covers([(5, 6)], 5, 6)


def test_install_leaves_a_screen_it_cannot_serve_alone() -> None:
    """A screen whose compositor is not Textual's plain one (or a Textual without the parts
    SpanCompositor builds on) keeps its own."""

    class Other(Compositor):
        pass

    class FakeScreen:
        _compositor: Compositor = Other()

    screen: Any = FakeScreen()
    compositor.install(screen)
    assert type(screen._compositor) is Other
    screen._compositor = Compositor()
    compositor.install(screen)
    assert type(screen._compositor) is SpanCompositor
