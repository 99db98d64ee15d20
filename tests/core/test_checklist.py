"""The three-cadence checklist: window sizes that follow the run's logging, item verdicts per window,
the history of past windows, caching of closed windows."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from typing import Any

import pytest

from helpers import REAL, diagnose_all
from sfttop.core.checklist import (
    BY_CADENCE,
    FAIL,
    PASS,
    PENDING,
    WARN,
    Checklist,
    ChecklistState,
    checklist,
    nice_ceil,
    window_sizes,
)
from sfttop.core.diagnose import Diagnoser
from sfttop.core.records import Kind, Record
from sfttop.core.series import RunData

build = diagnose_all


def healthy(n: int, every: int = 5, steps_per_epoch: int | None = None, eval_every: int = 40) -> list[Record]:
    out = []
    for i in range(1, n + 1):
        step = i * every
        epoch = step / steps_per_epoch if steps_per_epoch else None
        loss = 0.6 + 1.8 * math.exp(-3 * i / n) * (1 + 0.01 * math.sin(i))
        m = {
            "loss": loss,
            "grad_norm": 1.0 + 0.2 * math.sin(i),
            "learning_rate": 2e-5 * 0.5 * (1 + math.cos(math.pi * i / n)),
            "entropy": 1.2 + 0.6 * math.exp(-3 * i / n),
            "mean_token_accuracy": 0.9 - 0.3 * math.exp(-3 * i / n),
        }
        out.append(Record(Kind.TRAIN, step, m, epoch))
        if i % eval_every == 0:
            ev = {
                "eval_loss": loss * 1.05,
                "eval_entropy": m["entropy"] * 1.01,
                "eval_mean_token_accuracy": m["mean_token_accuracy"] - 0.02,
            }
            out.append(Record(Kind.EVAL, step, ev, epoch))
    return out


def item(state: ChecklistState, cadence: str, item_id: str, window: int = -1) -> tuple[str, str]:
    c = state.cadence(cadence)
    assert c is not None
    it = c.windows[window].item(item_id)
    assert it is not None
    return it.status, it.detail


def test_nice_ceil_and_window_sizes() -> None:
    assert [nice_ceil(x) for x in (1, 3, 100, 101, 240, 251, 1000, 2001)] == [1, 5, 100, 200, 250, 500, 1000, 2500]
    assert window_sizes(1) == (100, 1000)
    assert window_sizes(5) == (100, 1000)  # >= 5 points in each 100-step window
    assert window_sizes(50) == (250, 1000)
    assert window_sizes(500) == (2500, 10000)
    # a long run gets wider windows: at most MAX_WINDOWS (1000) per cadence
    assert window_sizes(5, 100_000) == (100, 1000)
    assert window_sizes(5, 200_000) == (200, 1000)
    assert window_sizes(10, 3_000_000) == (3200, 16000)  # doubled as the run grows
    assert window_sizes(50, 1_000_000) == (1000, 4000)


def test_items_are_the_seeds() -> None:
    assert [i.id for i in BY_CADENCE["100_steps"]] == [
        "loss_falling",
        "grad_norm_in_range",
        "lr_decaying",
        "no_nonfinite",
    ]
    assert [i.id for i in BY_CADENCE["1000_steps"]] == [
        "loss_gap",
        "eval_acc_rising",
        "no_overfitting",
        "entropy_stable",
    ]
    assert [i.id for i in BY_CADENCE["epoch"]] == ["trend_healthy", "hparams_ok", "best_checkpoint", "early_stop"]


def test_healthy_run_every_5_steps() -> None:
    data, diag = build(healthy(240, every=5, steps_per_epoch=400))  # 1200 steps, 3 epochs
    st = checklist(data, diag)
    c100 = st.cadence("100_steps")
    assert c100 is not None and c100.window_steps == 100 and c100.label == "every 100 steps"
    assert len(c100.windows) == 12
    assert c100.windows[0].label == "steps 0-100" and c100.windows[1].start_step == 101
    for w in c100.windows:
        assert all(i.status in (PASS, PENDING) for i in w.items), [(i.id, i.status, i.detail) for i in w.items]
    c1000 = st.cadence("1000_steps")
    assert c1000 is not None and [w.label for w in c1000.windows] == ["steps 0-1000", "steps 1001-2000"]
    assert item(st, "1000_steps", "loss_gap", 0)[0] == PASS
    assert item(st, "1000_steps", "eval_acc_rising", 0)[0] == PASS
    epochs = st.cadence("epoch")
    assert epochs is not None and [w.label for w in epochs.windows] == ["epoch 1", "epoch 2", "epoch 3"]
    assert item(st, "epoch", "best_checkpoint")[0] == PASS
    assert "step 1200" in item(st, "epoch", "best_checkpoint")[1]
    assert item(st, "epoch", "early_stop")[0] == PASS
    json.dumps(st.to_dict(), allow_nan=False)


def test_sparse_logging_gets_wider_windows() -> None:
    data, diag = build(healthy(40, every=500, eval_every=4))  # 20000 steps logged every 500
    st = checklist(data, diag)
    c100, c1000 = st.cadence("100_steps"), st.cadence("1000_steps")
    assert c100 is not None and c100.window_steps == 2500 and c100.label == "every 2500 steps"
    assert c1000 is not None and c1000.window_steps == 10000
    assert len(c100.windows) == 8
    assert item(st, "100_steps", "loss_falling", 3)[0] == PASS


def test_nan_turns_the_window_red_and_history_shows_when() -> None:
    recs = healthy(100, every=5)
    recs = [r for r in recs if r.kind is Kind.TRAIN]
    for r in recs[50:]:
        r.metrics["grad_norm"] = math.nan
    data, diag = build(recs)
    st = checklist(data, diag)
    statuses = [item(st, "100_steps", "no_nonfinite", k)[0] for k in range(5)]
    assert statuses == [PASS, PASS, FAIL, FAIL, FAIL]
    assert "grad_norm x" in item(st, "100_steps", "no_nonfinite", 2)[1]
    assert item(st, "epoch", "early_stop")[0] in (PENDING, FAIL)  # no eval here; a NaN run is stopped
    assert item(st, "epoch", "hparams_ok")[0] == FAIL


def test_pending_before_data() -> None:
    data, diag = build([Record(Kind.TRAIN, 5, {"loss": 2.0})])
    st = checklist(data, diag)
    assert item(st, "100_steps", "loss_falling")[0] == PENDING
    assert item(st, "100_steps", "grad_norm_in_range")[0] == PENDING
    assert item(st, "1000_steps", "loss_gap")[0] == PENDING
    assert item(st, "epoch", "best_checkpoint")[0] == PENDING
    empty = checklist(RunData(), Diagnoser())
    assert all(c.latest is None for c in empty.cadences)


def test_overfitting_run() -> None:
    recs = []
    for i in range(1, 201):
        step = i * 10
        recs.append(Record(Kind.TRAIN, step, {"loss": 2.0 * math.exp(-i / 30) + 0.02, "grad_norm": 1.0}, step / 500))
        if i % 10 == 0:
            k = i // 10
            ev_loss = 1.6 - 0.1 * k if k <= 5 else 1.1 + 0.12 * (k - 5)
            acc = 0.7 + 0.01 * min(k, 5) - 0.02 * max(0, k - 5)
            recs.append(Record(Kind.EVAL, step, {"eval_loss": ev_loss, "eval_mean_token_accuracy": acc}, step / 500))
    data, diag = build(recs)
    st = checklist(data, diag)
    assert item(st, "1000_steps", "no_overfitting")[0] in (WARN, FAIL)
    assert item(st, "1000_steps", "loss_gap")[0] == FAIL
    assert item(st, "1000_steps", "eval_acc_rising")[0] == WARN
    assert item(st, "epoch", "early_stop")[0] in (WARN, FAIL)
    status, detail = item(st, "epoch", "best_checkpoint")
    assert status == WARN and "step 500" in detail  # best eval is in an earlier epoch


def test_closed_windows_are_cached_and_the_open_one_is_not() -> None:
    recs = healthy(100, every=5)
    data, diag = RunData(), Diagnoser()
    eng = Checklist()
    for r in recs[:60]:
        data.add(r)
        diag.observe(r)
    s1 = eng.update(data, diag)
    c1 = s1.cadence("100_steps")
    assert c1 is not None
    first, latest = c1.windows[0], c1.windows[-1]
    assert first.closed and not latest.closed
    for r in recs[60:]:
        data.add(r)
        diag.observe(r)
    s2 = eng.update(data, diag)
    c2 = s2.cadence("100_steps")
    assert c2 is not None
    assert c2.windows[0] is first  # closed window reused
    assert c2.windows[len(c1.windows) - 1] is not latest  # it was open: recomputed (and now closed)


def test_resume_recomputes() -> None:
    recs = [r for r in healthy(80, every=5) if r.kind is Kind.TRAIN]
    data, diag = RunData(), Diagnoser()
    eng = Checklist()
    for r in recs[:60]:
        data.add(r)
        diag.observe(r)
    eng.update(data, diag)
    for r in recs[40:]:  # resumed from step 200
        data.add(r)
        diag.observe(r)
    st = eng.update(data, diag)
    c = st.cadence("100_steps")
    assert c is not None and len(c.windows) == 4
    assert diag.restarts == 1


@pytest.mark.parametrize("eval_every", [10, 1000])
def test_to_dict_shape(eval_every: int) -> None:
    data, diag = build(healthy(60, every=10, steps_per_epoch=300, eval_every=eval_every))
    d = checklist(data, diag).to_dict()
    assert set(d) == {"100_steps", "1000_steps", "epoch"}
    cad = d["100_steps"]
    assert isinstance(cad, dict)
    assert set(cad) == {"label", "window_steps", "latest", "windows"}
    latest = cad["latest"]
    assert isinstance(latest, dict)
    assert set(latest) == {"index", "label", "start_step", "end_step", "closed", "status", "items"}
    items = latest["items"]
    assert isinstance(items, list) and set(items[0]) == {"id", "label", "status", "detail"}
    json.dumps(d, allow_nan=False)


class _Counted:
    """A stand-in for a series' array that counts the elements read through it."""

    def __init__(self, arr: object, tally: list[int]) -> None:
        self.arr = arr
        self.tally = tally

    def __len__(self) -> int:
        return len(self.arr)  # type: ignore[arg-type]

    def __getitem__(self, k: int | slice) -> object:
        r = self.arr[k]  # type: ignore[index]
        self.tally[0] += len(r) if isinstance(k, slice) else 1
        return r

    def __iter__(self) -> Iterable[object]:
        for v in self.arr:  # type: ignore[attr-defined]
            self.tally[0] += 1
            yield v


def test_one_more_record_recomputes_only_the_open_windows(monkeypatch: pytest.MonkeyPatch) -> None:
    from sfttop.core.checklist import engine as cl

    recs = healthy(20_000, every=5)  # 100,000 steps (1000 windows of 100), no epoch info
    data, diag = build(recs[:-1])
    eng = Checklist()
    eng.update(data, diag)
    data.add(recs[-1])
    diag.observe(recs[-1])
    recomputed: list[tuple[str, int, int]] = []
    real_judge = cl._judge

    def judge(cid: str, ctx: Any, index: int, label: str, a: int, b: int, closed: bool, first: bool) -> Any:
        recomputed.append((cid, a, b))
        return real_judge(cid, ctx, index, label, a, b, closed, first)

    monkeypatch.setattr(cl, "_judge", judge)
    tally = [0]
    for s in [*data.series.values(), *data.index.values()]:
        monkeypatch.setattr(s, "steps", _Counted(s.steps, tally))
        monkeypatch.setattr(s, "values", _Counted(s.values, tally))
    st = eng.update(data, diag)
    monkeypatch.undo()
    # the open window of each cadence, nothing else ...
    assert sorted(c for c, _a, _b in recomputed) == ["1000_steps", "100_steps", "epoch"]
    # ... reading a bounded number of points of a 200,000-point run: the whole-run window reads a
    # sample, evals and epochs are indexed incrementally, findings and evals by bisection
    assert tally[0] <= 12_000, tally
    c100 = st.cadence("100_steps")
    assert c100 is not None and c100.window_steps == 100 and 0 < len(c100.windows) <= cl.MAX_WINDOWS


def test_windows_that_grow_merge_the_verdicts_of_the_ones_they_join() -> None:
    # No max_steps: the windows double as the run grows. The grown windows are the old ones'
    # verdicts merged, not judged again from history the store has since decimated, so every
    # past window still speaks of its own points; a spike in one old window still shows.
    from sfttop.core.run import CHECKLIST_STRIDE

    recs = healthy(60_000, every=5)  # 300,000 steps: 100-step windows grow to 400 on the way
    spike = next(i for i, r in enumerate(recs) if r.kind is Kind.TRAIN and r.step == 40_000)
    recs[spike].metrics["grad_norm"] = 50.0
    data, diag = RunData(), Diagnoser()
    eng = Checklist()
    for i, r in enumerate(recs):
        data.add(r)
        diag.observe(r)
        if i % CHECKLIST_STRIDE == 0:
            eng.advance(data, diag)
    st = eng.update(data, diag)
    c100 = st.cadence("100_steps")
    assert c100 is not None and c100.window_steps == 400
    thin = [w.label for w in c100.windows for it in w.items if "not enough" in it.detail or "no " in it.detail[:3]]
    assert thin == []
    (w,) = [w for w in c100.windows if w.start_step <= 40_000 <= w.end_step]
    g = w.item("grad_norm_in_range")
    assert g is not None and g.status == FAIL and "grad_explosion" in g.detail


def test_the_item_table_says_everything_about_an_item() -> None:
    """One row per item: the engine, the report and the TUI read labels, judges and finding codes
    from it; every code it names is one the diagnoser can raise."""
    from sfttop.core.checklist import CADENCES, ITEM_BY_ID, ITEMS
    from sfttop.core.diagnose import CODES

    assert len(ITEM_BY_ID) == len(ITEMS) == 12
    assert [i.cadence for i in ITEMS] == sorted((i.cadence for i in ITEMS), key=list(CADENCES).index)
    for it in ITEMS:
        assert it.label.endswith("?") and 0 < len(it.short) <= 20, it
        assert not it.warn & it.fail, it
        assert (it.warn | it.fail) <= set(CODES), (it.id, (it.warn | it.fail) - set(CODES))
    assert [i.id for i in ITEMS if i.judge is None] == ["hparams_ok"]


def test_the_codes_checklist_and_assessment_name_are_the_diagnosers() -> None:
    from sfttop.core import codes
    from sfttop.core.diagnose import CODES

    named = {v for k, v in vars(codes).items() if k.isupper()}
    assert len(named) == 19 and named <= set(CODES), named - set(CODES)


def test_report_labels_and_tui_short_labels_come_from_the_table() -> None:

    from sfttop.core.checklist import ITEM_BY_ID
    from sfttop.core.config import Config
    from sfttop.core.run import Run
    from sfttop.tui.panels import checklist_view

    log = REAL / "tf5" / "healthy" / "train.log"
    run = Run("healthy", str(log), Config())
    while not run.loaded:
        run.poll(4 << 20)
    state = run.checklist.update(run.data, run.diagnoser)
    seen = {it.id: it.label for c in state.cadences for w in c.windows for it in w.items}
    assert seen == {i: ITEM_BY_ID[i].label for i in seen} and len(seen) == 12
    rows = checklist_view(run, run.checklist).rows
    assert {r.label for r in rows} == {i.short for i in ITEM_BY_ID.values()}


@pytest.mark.parametrize(
    ("change", "status"),
    [({}, WARN), ({"loss_rise_warn": 0.3, "loss_rise_fail": 0.5}, PASS), ({"loss_rise_fail": 0.15}, FAIL)],
)
def test_loss_rising_is_judged_by_the_thresholds(change: dict[str, float], status: str) -> None:
    from dataclasses import replace

    from sfttop.core.config import Thresholds

    recs = healthy(200, every=5)  # 1000 steps; then make the loss rise ~22% a window of 100
    for r in recs:
        if r.kind is Kind.TRAIN:
            r.metrics["loss"] = 0.5 * 1.01 ** (r.step // 5)
    data, _diag = build(recs)
    # judged on the data alone: the diagnoser's divergence finding would make every window a warning
    st = checklist(data, Diagnoser(), replace(Thresholds(), **change))
    assert item(st, "100_steps", "loss_falling", -2)[0] == status


def test_entropy_and_epoch_trend_are_judged_by_the_thresholds() -> None:
    from dataclasses import replace

    from sfttop.core.config import Thresholds

    data, diag = build(healthy(240, every=5, steps_per_epoch=400))
    st = checklist(data, diag)
    assert item(st, "1000_steps", "entropy_stable", 0)[0] == PASS
    assert item(st, "epoch", "trend_healthy", 1)[0] == PASS
    st = checklist(data, diag, replace(Thresholds(), entropy_collapse=2.0, epoch_loss_rise=-0.5))
    assert item(st, "1000_steps", "entropy_stable", 0)[0] == FAIL
    assert item(st, "epoch", "trend_healthy", 1)[0] == WARN


def test_a_merged_window_keeps_each_items_worst_the_latest_of_equals() -> None:
    from sfttop.core.checklist import CheckResult, Window

    def win(k: int, *sd: tuple[str, str]) -> Window:
        return Window(
            k,
            None,
            k * 100 + 1,
            (k + 1) * 100,
            True,
            [CheckResult(f"i{j}", f"I{j}?", s, d) for j, (s, d) in enumerate(sd)],
        )

    parts = [
        win(0, (WARN, "old warn"), (PASS, "a"), (PENDING, "p")),
        win(1, (PASS, "b"), (PASS, "c"), (PASS, "d")),
        win(2, (WARN, "new warn"), (FAIL, "f"), (PENDING, "q")),
    ]
    merged = Window.worst_of(0, 1, 300, parts)
    assert [(i.status, i.detail) for i in merged.items] == [(WARN, "new warn"), (FAIL, "f"), (PASS, "d")]
    assert merged.label == "steps 1-300" and merged.closed and merged.status == FAIL
    assert merged.shows([None, (FAIL, merged.items[1].detail), None])
    assert not merged.shows([(PASS, "new warn"), None, None])


def test_a_masked_nan_run_passes_no_check_on_its_nan_values() -> None:
    """The Trainer logs 'loss': 0.0 once every step is NaN (grad_norm and entropy say nan): no
    check may read that as a falling loss, a stable entropy or a rising accuracy of 0 -> 0."""

    from sfttop.core.config import Config
    from sfttop.core.report import build

    log = REAL / "tf4" / "nan_filtered" / "train.log"
    report, _ = build([str(log)], Config(), clock=lambda: 2e9)
    latest = {c: cad["latest"] for c, cad in report["runs"][0]["checklist"].items()}
    status = {it["id"]: it["status"] for w in latest.values() if w for it in w["items"]}
    assert status["loss_falling"] == "fail"
    assert status["entropy_stable"] == "fail"
    assert status["eval_acc_rising"] == "fail"
    assert status["no_overfitting"] != "pass"


def test_merging_windows_on_their_compact_form_is_the_item_by_item_merge() -> None:
    """``Window.worst_of`` and the engine's merge work on the windows' status strings (a run
    whose windows grow merges thousands at once, in a live poll): the same items, details and
    verdicts as merging item by item, worst first and the latest of equals."""
    import random

    from sfttop.core.checklist import CheckResult, Window
    from sfttop.core.checklist.engine import BY_CADENCE, ORDER, _Cached, _merge_windows

    def reference(parts: list[_Cached], cid: str) -> tuple[list[tuple[str, str]], list[tuple[str, str] | None]]:
        items = []
        for j in range(len(parts[0].window.items)):
            r = max((p.window.items[j] for p in reversed(parts)), key=lambda r: ORDER[r.status])
            items.append((r.status, r.detail))
        verdicts = [p.verdicts(cid) for p in parts]
        base: list[tuple[str, str] | None] = []
        for j in range(len(BY_CADENCE[cid])):
            vs = [v[j] for v in verdicts]
            base.append(None if any(v is None for v in vs) else max((v for v in reversed(vs) if v is not None), key=lambda v: ORDER[v[0]]))  # type: ignore[union-attr]
        return items, base

    rng = random.Random(7)
    cid = "100_steps"
    specs = BY_CADENCE[cid]
    statuses = [PASS, WARN, FAIL, PENDING]
    for _trial in range(300):
        parts = []
        for k in range(rng.randint(1, 6)):
            results = [CheckResult(it.id, it.label, rng.choice(statuses), rng.choice(["a", "b", "c", ""])) for it in specs]
            w = Window(k, None, k * 100 + 1, (k + 1) * 100, True, results)
            base = None
            if rng.random() < 0.3:  # a finding made some items worse than the data's verdicts
                base = [None if it.judge is None else (rng.choice(statuses), rng.choice(["x", "y"])) for it in specs]
            parts.append(_Cached(w, base))
        got = _merge_windows(cid, 0, 1, 100 * len(parts), parts)
        items, base = reference(parts, cid)
        assert [(r.status, r.detail) for r in got.window.items] == items
        assert got.verdicts(cid) == [None if it.judge is None else b for it, b in zip(specs, base)]
