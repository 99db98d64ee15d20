#!/usr/bin/env python3
"""Render the README screenshots: real SVG captures of sfttop on the real fixture logs.

    python scripts/screenshots.py              # writes screenshots/*.svg
    python scripts/screenshots.py --out /tmp/shots --fixtures tests/fixtures/real/tf5

Every capture runs the app headless in replay mode (each log read to its end before the first
paint, fixed clock), so the same logs always give the same pictures. The logs are the ones
written by real transformers/TRL runs under tests/fixtures/real/; the demo capture uses the
seeded ``sfttop --demo`` writer.
"""

from __future__ import annotations

import argparse
import asyncio
import html
import os
import re
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNS = ("healthy_multi", "explode", "nan_unfiltered", "overfit", "crash", "stall", "nan_filtered")


@dataclass(frozen=True)
class Shot:
    name: str
    size: tuple[int, int]
    keys: tuple[str, ...] = ()
    demo: bool = False
    lang: str = "en"  # --lang: the language the capture speaks


SHOTS = (
    Shot("sfttop-120x36", (120, 36), ("3",)),  # a NaN run: banner, ✕ marks, failing checks
    Shot("sfttop-120x36-grad-norm", (120, 36), ("2", "m")),  # explosion against the 10/20 lines
    Shot("sfttop-120x36-overlay", (120, 36), ("1", "o")),  # every run, a colour and a glyph each, log y by itself
    Shot("sfttop-80x24", (80, 24), ("3",)),
    Shot("sfttop-80x24-masked-nan", (80, 24), ("7",)),  # the Trainer logged 'loss': 0.0: NaN (masked), ✕
    Shot("sfttop-80x24-checklist", (80, 24), ("4", "v")),
    Shot("sfttop-60x15", (60, 15), ("2",)),
    Shot("sfttop-demo-120x36", (120, 36), (), demo=True),
    Shot("sfttop-zh-120x36", (120, 36), ("2",), lang="zh"),  # --lang zh: the explosion, in the FAQ's words
    Shot("sfttop-zh-80x24-checklist", (80, 24), ("4", "v"), lang="zh"),
)


async def capture(paths: list[str], shot: Shot, out: Path, title_suffix: str = "") -> Path:
    from sfttop.core import i18n
    from sfttop.core.config import Config
    from sfttop.tui.app import SfttopApp

    i18n.set_lang(shot.lang)
    app = SfttopApp(paths, Config(), replay=True, title_suffix=title_suffix)
    async with app.run_test(size=shot.size) as pilot:
        await pilot.pause()
        for key in shot.keys:
            await pilot.press(key)
            await pilot.pause()
        await pilot.pause()
        target = out / f"{shot.name}.svg"
        app.save_screenshot(filename=target.name, path=str(out))
    target.write_text(wide_text_lengths(target.read_text(encoding="utf-8")), encoding="utf-8")
    return target


_TEXT = re.compile(r'(<text [^>]*?x="[^"]*" y="[^"]*" textLength=")([^"]*)("[^>]*>)([^<]*)(</text>)')


def wide_text_lengths(svg: str) -> str:
    """Rich's SVG export places every run of text at its cell but sizes it by its characters
    (``textLength = char width x len(text)``), so a browser squeezes each CJK character into one
    cell and leaves a gap after the run (Rich issue #2742, open). Size the runs that hold wide
    characters by their cells; the others are left byte for byte."""
    from rich.cells import cell_len

    def fix(m: re.Match[str]) -> str:
        text = html.unescape(m.group(4))
        wide = sum(1 for ch in text if cell_len(ch) == 2)
        if not wide:
            return m.group(0)
        char_width = float(m.group(2)) / len(text)
        width = format(char_width * (len(text) + wide), "g")
        return f"{m.group(1)}{width}{m.group(3)}{m.group(4)}{m.group(5)}"

    return _TEXT.sub(fix, svg)


async def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(ROOT / "screenshots"), help="directory for the SVG files")
    ap.add_argument("--fixtures", default=str(ROOT / "tests" / "fixtures" / "real" / "tf4"), help="real fixture logs")
    args = ap.parse_args(argv)
    # No user config, no colour override: the pictures show the defaults.
    os.environ.setdefault("XDG_CONFIG_HOME", str(ROOT / "tests" / "fixtures" / "no-config"))
    os.environ.pop("NO_COLOR", None)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    fixtures = Path(args.fixtures)
    paths = [str(fixtures / r / "train.log") for r in RUNS if (fixtures / r / "train.log").exists()]
    if not paths:
        print(f"screenshots: no fixture logs under {fixtures}", file=sys.stderr)
        return 2
    from sfttop.core.demo import DemoWriter

    for shot in SHOTS:
        if shot.demo:
            with tempfile.TemporaryDirectory(prefix="sfttop-shot-") as tmp:
                writer = DemoWriter(root=tmp, history=110)
                writer.write_history()
                target = await capture([writer.glob], shot, out, " (demo)")
        else:
            target = await capture(paths, shot, out)
        print(target.relative_to(ROOT) if target.is_relative_to(ROOT) else target)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
