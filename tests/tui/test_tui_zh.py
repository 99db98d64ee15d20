"""The TUI in Chinese: wide characters laid out right, and no English left on the screen.

A CJK character is two cells wide. These tests render the whole app in zh at 120x36, 80x24 and
60x15 (replay mode, real logs) and read the screen back cell by cell: no line may be wider than
the terminal, and every bordered box must have its corners and sides in the same columns on
every line (a width counted in characters instead of cells shifts the right border).
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.cells import cell_len
from rich.text import Text
from textual.pilot import Pilot
from textual.widget import Widget

from helpers import REAL as _REAL
from helpers import assessment_text, screen_lines
from sfttop.core import i18n
from sfttop.core import metrics as M
from sfttop.core.config import Config
from sfttop.core.demo import DemoWriter
from sfttop.core.unread import FORMATS_READ
from sfttop.tui.app import SfttopApp
from sfttop.tui.cells import crop, fit, fit_text, ljust, rjust, wrap_text
from sfttop.tui.chart_render import ChartLine, ChartOptions, build_chart
from sfttop.tui.palette import CHECK_STATUS, CRITICAL, DONE, ERROR, INFO, LOADING, MISSING, OK, WAITING, WARNING
from sfttop.tui.widgets.alert_banner import BannerItem, banner_text
from sfttop.tui.widgets.assessment import AssessmentView
from sfttop.tui.widgets.checklist import ChecklistView, CheckRow, checklist_lines
from sfttop.tui.widgets.key_bar import KeyHint, key_bar_text
from sfttop.tui.widgets.metric_card import CardData, card_text
from sfttop.tui.widgets.run_list import RunList, RunRow, row_text
from sfttop.tui.widgets.title_bar import TitleInfo, title_text

REAL_TF5 = _REAL / "tf5"
THREE = [str(REAL_TF5 / n / "train.log") for n in ("healthy", "explode", "overfit")]
ALL_TF5 = sorted(str(p) for p in REAL_TF5.glob("*/train.log"))
SIZES = [(120, 36), (80, 24), (60, 15)]
SIZE_IDS = ["120x36", "80x24", "60x15"]


# ---------------------------------------------------------------------------------- catalog
# (every marked string of tui/ translated, placeholders kept, nothing stale: tests/test_i18n_catalog.py)
def test_status_words_fit_their_four_cell_column(zh: None) -> None:
    for st_ in (CRITICAL, WARNING, INFO, OK, LOADING, MISSING, DONE, WAITING, ERROR, *CHECK_STATUS.values()):
        assert st_.shown_word != st_.word and cell_len(st_.shown_word) <= 4, st_


# ---------------------------------------------------------------------------------- cells
@given(st.text(st.sampled_from("ab梯度爆炸、：…e✖")), st.integers(0, 30))
def test_fit_never_cuts_a_wide_character(text: str, width: int) -> None:
    out = fit(text, width)
    assert cell_len(out) <= width
    if cell_len(text) <= width:
        assert out == text
    elif width == 0:
        assert out == ""
    else:
        assert out.endswith("…") and text.startswith(out[:-1])
        assert cell_len(out) >= width - 1  # at most the one cell a wide character could not use
    assert cell_len(crop(text, width)) <= width and text.startswith(crop(text, width))
    styled = Text(text, style="bold")
    fit_text(styled, width)
    assert styled.plain == out
    assert cell_len(ljust(out, width)) == width == cell_len(rjust(out, width))


@given(st.lists(st.sampled_from(["梯度", "爆炸", "，", "。", " TensorBoard ", " ", "（", "）", " loss", "学习率", "0.001 "]),
                max_size=30), st.integers(12, 40))
def test_wrap_breaks_between_chinese_characters_and_keeps_latin_words_whole(parts: list[str], width: int) -> None:
    text = "".join(parts)
    lines = wrap_text(Text(text), width).plain.split("\n")
    if cell_len(text) > width and cell_len(text) != len(text):
        assert all(cell_len(line) <= width for line in lines), lines
    assert "".join(lines).replace(" ", "") == text.replace(" ", "")
    assert "\n".join(lines).count("TensorBoard") == text.count("TensorBoard")


def test_punctuation_stays_with_its_word() -> None:
    for width in range(8, 30):  # (narrower, "0.001）" alone is wider than a line)
        lines = wrap_text(Text("梯度爆炸，学习率太大。请降低学习率（当前 0.001）或检查数据。"), width).plain.split("\n")
        assert all(cell_len(line) <= width for line in lines)
        assert not any(line.startswith(("，", "。", "）")) or line.endswith("（") for line in lines), lines


# ---------------------------------------------------------------------------------- renderers
CJK_RUN = "实验-学习率过大-梯度爆炸-第二次"


@pytest.mark.parametrize("width", range(30, 70))  # the narrowest side panel holds 30 cells
def test_renderers_measure_cells(zh: None, width: int) -> None:
    row = row_text(RunRow(CJK_RUN, 0, CRITICAL, "第 900 步"), 0, True, width, {})
    assert cell_len(row.plain) <= width
    row = row_text(RunRow(CJK_RUN, 0, CRITICAL, "900/4000"), 0, False, width, {}, show_word=width >= 26)
    assert cell_len(row.plain) == width or "900/4000" not in row.plain
    card = card_text(CardData("loss", "损失值很长的标签", 1.5, 1.0, (1.0, 1.5), masked=width % 2 == 0), width, {})
    assert cell_len(card.plain) <= width
    hints = (KeyHint("q", "退出", 0), KeyHint("?", "按键", 1), KeyHint("tab", "下个运行", 2), KeyHint("o", "叠加", 5))
    assert cell_len(key_bar_text(hints, width, {}).plain) <= width
    item = BannerItem(("r", "c", 1), CRITICAL, "grad_explosion", "梯度爆炸：grad_norm 62.38 超过严重阈值 20", "降低学习率")
    banner = banner_text((item, item), width, 1, {})
    assert all(cell_len(line) <= width for line in banner.plain.split("\n"))


def test_columns_line_up_in_chinese(zh: None) -> None:
    """Where a column starts or ends does not depend on how many CJK characters precede it."""
    statuses = (CRITICAL, WARNING, INFO, OK, LOADING, MISSING, DONE, WAITING, ERROR)
    for st_ in statuses:
        plain = row_text(RunRow("run-a", 0, st_, "1/2"), 0, False, 40, {}).plain
        assert cell_len(plain[: plain.index("run-a")]) == 9, plain  # "  1 " glyph, a 4-cell word, " "
    view = AssessmentView("健康", "ok", metrics=(
        ("loss", "0.52", "ok", ""), ("token 准确率 差距", "-2.8%", "ok", "泛化良好"), ("eval_loss", "0.61", "warning", "")))
    lines = assessment_text(view, 60, {}).plain.split("\n")[-3:]  # the metrics table
    ends = {cell_len(line[: m.end()]) for line in lines if (m := re.search(r"-?[\d.]+%?(?=  |$)", line))}
    assert len(ends) == 1, lines


@pytest.mark.parametrize("x_label", ["step", "tokens"])
def test_the_plot_itself_holds_no_wide_text(zh: None, x_label: str) -> None:
    """plotext counts characters, not cells: nothing Chinese may reach it. Its ticks are numbers;
    the legend and the axis title (x 轴：步数) are drawn by the widget, in the chart's border."""
    line = ChartLine("运行 loss", [float(i) for i in range(50)], [1.0 / (i + 1) for i in range(50)], (80, 160, 255))
    res = build_chart([line], ChartOptions(x_label=x_label, metric="loss"), 70, 16)
    assert res.plotted
    plain = Text.from_ansi(res.text).plain.rstrip("\n").split("\n")
    assert all(cell_len(row) == len(row) == 70 for row in plain), plain


@pytest.mark.parametrize("width", range(40, 130, 7))
def test_title_in_chinese_keeps_the_alarms(zh: None, width: int) -> None:
    info = TitleInfo("sfttop (演示)", CJK_RUN, 0, 0, 4, "第 900/4000 步 22% · 轮次 0.83 · 剩余 9m40s", "已完成",
                     "其他 ✖2 严重 ▲1 警告", "", "", "900/4000 轮次 0.83", "其他 ✖2 ▲1")
    text = title_text(info, width, {}).plain
    assert cell_len(text) <= width, text
    assert "✖2" in text and "▲1" in text


def test_checklist_columns_line_up_in_chinese(zh: None) -> None:
    rows = tuple(
        CheckRow(cad, label, state, "中位数 0.64，上一窗口为 0.66（-1.9%）", ("pass", "warn", state), window=win)
        for cad, win in (("每 100 步", "1001-1100"), ("每轮", "whole run (no epoch info)"))
        for label, state in (("loss 在下降", "pass"), ("学习率符合调度计划而且这个标签很长", "fail"), ("没有 NaN/inf", "warn"))
    )
    for width in (40, 59, 60, 70, 90, 120):
        lines = [line.plain for line in checklist_lines(ChecklistView(rows), width, {})]
        # (a row's detail runs past the width: the widget ends it with … where the panel does)
        # the column of past windows' glyphs ends at the same cell on every row
        ends = {cell_len(line[: m.end()]) for line in lines if (m := re.search(r"[✔▲✖·]{3}", line))}
        assert len(ends) == 1, (width, lines)


# ---------------------------------------------------------------------------------- the screen
def cells_of(line: str) -> list[str]:
    """One entry per terminal cell; the second cell of a wide character is ''."""
    out: list[str] = []
    for ch in line:
        out.append(ch)
        out.extend([""] * (cell_len(ch) - 1))
    return out


def assert_laid_out(app: SfttopApp, where: str) -> None:
    width, height = app.size
    lines = screen_lines(app)
    assert len(lines) == height, where
    grid = [cells_of(line) for line in lines]
    for y, row in enumerate(grid):
        assert len(row) == width, f"{where}: line {y} is {len(row)} cells wide, not {width}: {lines[y]!r}"
    boxes = [w for w in app.screen.query(Widget) if w.styles.border_top[0] == "round" and w.display and w.region.area]
    assert boxes, where
    for w in boxes:
        r = w.region
        if r.right > width or r.bottom > height or not w.visible:
            continue
        top, bottom = grid[r.y], grid[r.bottom - 1]
        name = f"{where} {w.id or type(w).__name__}"
        assert (top[r.x], top[r.right - 1]) == ("╭", "╮"), f"{name}: top {lines[r.y]!r}"
        assert (bottom[r.x], bottom[r.right - 1]) == ("╰", "╯"), f"{name}: bottom {lines[r.bottom - 1]!r}"
        for y in range(r.y + 1, r.bottom - 1):
            assert (grid[y][r.x], grid[y][r.right - 1]) == ("│", "│"), f"{name}: line {y} {lines[y]!r}"


@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
async def test_every_box_is_aligned_in_chinese(zh: None, size: tuple[int, int]) -> None:
    """Each view, the overlay of ten runs and the help screen: every line of every box the same
    display width, no line wider than the terminal."""
    app = SfttopApp(ALL_TF5, Config(), replay=True)
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        explode = ALL_TF5.index(str(REAL_TF5 / "explode" / "train.log")) + 1
        await pilot.press(str(explode))
        await pilot.pause()
        assert_laid_out(app, f"{size} chart")
        for view in range(3):
            await pilot.press("v")
            await pilot.pause()
            assert_laid_out(app, f"{size} view {view + 1}")
        await pilot.press("v", "o", "m")
        await pilot.pause()
        assert_laid_out(app, f"{size} overlay")
        await pilot.press("question_mark")
        await pilot.pause()
        assert_laid_out(app, f"{size} help")


async def test_a_chinese_run_name_is_cut_at_a_cell_boundary(zh: None, tmp_path: Path) -> None:
    run = tmp_path / "微调实验-学习率二乘十的负五次方-批大小六十四-第三次重跑" / "train.log"
    run.parent.mkdir()
    run.write_text((REAL_TF5 / "overfit" / "train.log").read_text(encoding="utf-8"), encoding="utf-8")
    for size in SIZES:
        app = SfttopApp([str(run), THREE[1]], Config(), replay=True)
        async with app.run_test(size=size) as pilot:
            await pilot.pause()
            assert_laid_out(app, f"{size} CJK run name")
            assert "…" in screen_lines(app)[0] or cell_len(screen_lines(app)[0].rstrip()) < size[0]



# ---------------------------------------------------------------------------------- no English
# Words that stay as they are in Chinese: what the logs and the config spell (metric names,
# finding codes, key binding ids, key names, Trainer arguments), names of programs, and the
# terms docs/glossary.zh.md keeps in English as the FAQ does.
ALLOWED = {
    "sfttop", "NaN", "nan", "inf", "EMA", "id", "keys", "TensorBoard", "htop", "btop", "nvitop",
    "tab", "shift", "ctrl", "esc", "down", "up", "logging_nan_inf_filter", "lr", "tokens", "eval_acc", "eval_ent",
    "token_acc", "eval_token_acc", "epoch", "token", "dropout", "LoRA", "SFT", "batch", "size", "Trainer",
    "gradient", "checkpointing", "traceback", "batch_size", "gradient_checkpointing",
}


def allowed_words(app: SfttopApp) -> set[str]:
    from sfttop.core.diagnose import CODES
    from sfttop.tui.keys import BINDING_IDS

    words = set(ALLOWED) | set(CODES) | set(BINDING_IDS) | set(M.LABELS.values())
    with app.lock:
        for run in app.monitor.runs:
            words |= set(run.data.series)
            words |= set(re.findall(r"[A-Za-z_]+", run.path))  # a run is named by its path
            # the log's own words, quoted: the error line a run crashed with
            words |= set(re.findall(r"[A-Za-z_]+", run.crashed or ""))
    return words


def english_words(lines: list[str], allowed: set[str]) -> set[str]:
    """Words of two letters or more (``9m40s``, ``1.0e-4``, ``6.4k`` are numbers); a word cut
    short with … passes when it begins an allowed one (``gra…`` of ``grad_norm``)."""
    text = "\n".join(lines)
    text = re.sub(r"checkpoint-\d+", "", text)  # checkpoint directories are paths
    out = set()
    for m in re.finditer(r"(?<![A-Za-z0-9_.])[A-Za-z][A-Za-z0-9_]+(…)?", text):
        word = m.group(0).rstrip("…")
        if re.fullmatch(r"x\d+", word):  # a count, "loss x18"
            continue
        if word in allowed or (m.group(1) and any(a.startswith(word) for a in allowed)):
            continue
        out.add(word)
    return out


async def english_on_screen(app: SfttopApp, pilot: Pilot[int]) -> dict[str, str]:
    """Every view of every run, the overlay, the chart keys and the help screen, each panel
    scrolled to its end: the English words seen, and where."""
    found: dict[str, str] = {}
    allowed = allowed_words(app)

    def look(where: str, widget: Widget | None = None) -> None:
        lines = screen_lines(app)
        if widget is not None:  # (a modal: the dimmed screen behind it was looked at already)
            r = widget.region
            lines = ["".join(cells_of(line)[r.x : r.right]) for line in lines[r.y : r.bottom]]
        for w in english_words(lines, allowed):
            found.setdefault(w, where)

    for i in range(len(app.monitor.runs)):
        await pilot.press(str(i + 1) if i < 9 else "tab")
        await pilot.pause()
        for view in range(4):
            for panel in app.screen.query("Checklist, AssessmentPanel"):
                panel.scroll_end(animate=False)
            await pilot.pause()
            look(f"run {i + 1} view {view}")
            await pilot.press("v")
            await pilot.pause()
    for key in ("o", "m", "m", "x", "s", "l"):
        await pilot.press(key)
        await pilot.pause()
        look(f"chart after {key}")
    await pilot.press("question_mark")
    await pilot.pause()
    help_box = app.screen.query_one("VerticalScroll")
    look("help", help_box)
    step = max(1, help_box.size.height - 2)
    for y in range(step, int(help_box.max_scroll_y) + step, step):  # every line of it, page by page
        help_box.scroll_to(y=y, animate=False)
        await pilot.pause()
        look(f"help, scrolled to {y}", help_box)
    assert help_box.scroll_y == help_box.max_scroll_y > 0
    return found


def _said(found: dict[str, str]) -> str:
    return "\n".join(f"{w!r} ({where})" for w, where in sorted(found.items()))


@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
async def test_no_english_word_on_the_chinese_screen(zh: None, size: tuple[int, int]) -> None:
    """Ten real runs (healthy, exploding, NaN, overfitting, crashed, stalled, ...): nothing in
    English but what the allowed list names."""
    app = SfttopApp(ALL_TF5, Config(), replay=True)
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        found = await english_on_screen(app, pilot)
    assert not found, _said(found)


async def test_the_chinese_demo_has_no_english_word(zh: None, tmp_path: Path) -> None:
    """sfttop --demo --lang zh: the simulated runs, as cli/ starts them."""
    demo = DemoWriter(root=str(tmp_path), history=110)
    demo.write_history()
    app = SfttopApp([demo.glob], Config(), replay=True, title_suffix=i18n._(" (demo)"))
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        found = await english_on_screen(app, pilot)
    assert not found, _said(found)


async def test_loading_history_speaks_chinese(zh: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """While a long history streams in (the run list's ◌ 读取 45%, the panels' 正在读取历史…,
    the title's count of runs still loading): laid out and in Chinese at every frame."""
    import sfttop.tui.app as app_module
    from synth import write_log

    for name, n in (("big", 3000), ("other", 3000), ("small", 30)):
        write_log(tmp_path / name / "train.log", n, epoch_scale=0.001, bars=True)
    monkeypatch.setattr(app_module, "LOAD_BUDGET", 8 << 10)  # 8 KiB a poll: a slow disk
    app = SfttopApp([str(tmp_path / "*" / "train.log")], Config(), interval=0.05, rescan_seconds=0.1)
    found: dict[str, str] = {}
    frames = 0
    async with app.run_test(size=(120, 36)) as pilot:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (frames == 0 or app.monitor.loading):
            await pilot.pause(0.1)
            rows = app.query_one("#runs", RunList).rows
            if not rows or not any(r.status is LOADING for r in rows):
                continue
            frames += 1
            assert_laid_out(app, f"loading frame {frames}")
            for w in english_words(screen_lines(app), allowed_words(app)):
                found.setdefault(w, f"frame {frames}")
    assert frames >= 2, "never saw the history loading"
    assert not found, _said(found)


@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
async def test_waiting_for_logs_in_chinese(zh: None, tmp_path: Path, size: tuple[int, int]) -> None:
    """Nothing matches yet, and a run whose file is gone: what the screen says, in Chinese."""
    pattern = str(tmp_path / "none-yet" / "*.log")
    app = SfttopApp([pattern], Config(), replay=True)
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        assert_laid_out(app, f"{size} waiting")
        lines = screen_lines(app)
        assert "等待日志" in "".join(lines)
        # (the pattern is a path, folded over lines where it is longer than one)
        assert not {w for w in english_words(lines, allowed_words(app)) if w not in pattern}


@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
async def test_logs_that_cannot_be_read_in_chinese(zh: None, tmp_path: Path, size: tuple[int, int]) -> None:
    """A path through a file, a symlink loop, a missing log, a log of no known format, an
    oversized trainer_state.json and a host that cannot be reached: each run's reason on screen
    is said in Chinese (the system's and ssh's words too), and every box stays aligned."""
    from sfttop.core import remote
    from sfttop.core.statefile import MAX_STATE_FILE

    (tmp_path / "file").write_text("x\n")
    (tmp_path / "loop1").symlink_to(tmp_path / "loop2")
    (tmp_path / "loop2").symlink_to(tmp_path / "loop1")
    (tmp_path / "garbage.log").write_text("hello world\nnothing to see here\n")
    (tmp_path / "big").mkdir()
    with open(tmp_path / "big" / "trainer_state.json", "wb") as f:
        f.truncate(MAX_STATE_FILE + 1)  # sparse: no disk used
    paths = [str(tmp_path / p) for p in ("file/train.log", "loop1", "missing.log", "garbage.log", "big/trainer_state.json")]
    script = "echo 'ssh: Could not resolve hostname gpu1: Name or service not known' >&2; exit 255"
    remote.set_ssh_command(f"sh -c {script!r} fake-ssh")
    try:
        paths.append("gpu1:runs/train.log")
        app = SfttopApp(paths, Config(), replay=True)
        async with app.run_test(size=size) as pilot:
            await pilot.pause(0.5)
            assert_laid_out(app, f"{size} unreadable")
            found = await english_on_screen(app, pilot)
            assert_laid_out(app, f"{size} unreadable, after the views")
    finally:
        remote.set_ssh_command(None)
    # the names of the inputs sfttop reads (listed where a log matched none of them), the paths
    # (cut at either end in a narrow pane), a size's unit, the metric the help screen names, and
    # ssh's own words (quoted as it said them, after the translated "unreachable since")
    names = set(re.findall(r"[A-Za-z0-9_]+", " ".join([*FORMATS_READ, *paths, script]))) | {"MiB", M.NUM_TOKENS}
    found = {w: where for w, where in found.items() if not any(n.startswith(w) or n.endswith(w) for n in names)}
    assert not found, _said(found)
