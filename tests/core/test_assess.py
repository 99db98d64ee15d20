"""The assessment (the seed's "your log analysis") and the best checkpoint."""

from __future__ import annotations

import json
import math
import os

import pytest

from helpers import diagnose_all
from sfttop.core.assess import CRITICAL, GOOD, HIGH, LOW, OK, WATCH, assess, best_checkpoint
from sfttop.core.diagnose import Diagnoser
from sfttop.core.records import Event, EventKind, Kind, Record
from sfttop.core.series import RunData

build = diagnose_all


SEED_TRAIN = {
    "loss": 0.1435,
    "grad_norm": 9.671,
    "learning_rate": 2.92e-06,
    "entropy": 1.843,
    "num_tokens": 7233941.0,
    "mean_token_accuracy": 0.954,
}
SEED_EVAL = {
    "eval_loss": 0.2582,
    "eval_runtime": 92.38,
    "eval_samples_per_second": 20.415,
    "eval_steps_per_second": 2.555,
    "eval_entropy": 1.832,
    "eval_num_tokens": 7233941.0,
    "eval_mean_token_accuracy": 0.926,
}


def test_the_seeds_own_example() -> None:
    """The seed FAQ's worked example: same verdicts, produced by the code."""
    data, diag = build(
        [Record(Kind.TRAIN, 2070, dict(SEED_TRAIN), 2.07), Record(Kind.EVAL, 2070, dict(SEED_EVAL), 2.07)]
    )
    a = assess(data, diag)
    rows = {m.metric: m for m in a.metrics}
    assert rows["loss"].status == GOOD  # ✅ 优秀
    assert rows["grad_norm"].status == WATCH  # ⚠️ 略高
    assert rows["learning_rate"].status == OK
    assert rows["entropy"].status == GOOD
    assert rows["mean_token_accuracy"].status == GOOD and "95%" in rows["mean_token_accuracy"].note
    comp = {c.item: c for c in a.comparison}
    assert comp["loss"].diff == pytest.approx(79.9, abs=0.1) and comp["loss"].status == WATCH
    assert comp["loss"].judgement == "mild overfitting"  # ⚠️ 轻微过拟合
    assert comp["loss"].diff_text == "+79.9%"
    assert comp["token_accuracy"].diff == pytest.approx(-2.8, abs=0.01) and comp["token_accuracy"].status == GOOD
    assert comp["entropy"].diff == pytest.approx(-0.6, abs=0.05) and comp["entropy"].judgement == "very consistent"
    assert a.verdict == "Slight overfitting tendency, but healthy overall."  # 轻微过拟合倾向,但整体健康
    assert any("token accuracy 95.4%" in p for p in a.positives)
    assert any("entropy agree" in p for p in a.positives)
    assert any(c.startswith("train/eval loss gap +79.9%") for c in a.cautions)
    assert any(c.startswith("grad_norm 9.671") for c in a.cautions)
    json.dumps(a.to_dict(), allow_nan=False)


@pytest.mark.parametrize(
    ("change", "metric", "status", "note"),
    [
        ({"loss_good": 0.1}, "loss", OK, "within the normal 0.01-1.0"),
        ({"grad_norm_watch": 0.99}, "grad_norm", GOOD, "stable, within 0.1-10"),
        ({"accuracy_excellent": 0.96}, "mean_token_accuracy", GOOD, "very good (90%+)"),
        ({"accuracy_very_good": 0.96, "accuracy_excellent": 0.97}, "mean_token_accuracy", OK, "within the normal"),
    ],
)
def test_the_seeds_example_under_other_thresholds(
    change: dict[str, float], metric: str, status: str, note: str
) -> None:
    """Every number the assessment judges by is a threshold: moving one moves the verdict."""
    from dataclasses import replace

    from sfttop.core.config import Thresholds

    data, diag = build(
        [Record(Kind.TRAIN, 2070, dict(SEED_TRAIN), 2.07), Record(Kind.EVAL, 2070, dict(SEED_EVAL), 2.07)]
    )
    a = assess(data, diag, replace(Thresholds(), **change))
    row = next(m for m in a.metrics if m.metric == metric)
    assert row.status == status and row.note.startswith(note), row
    comp = {c.item: c for c in a.comparison}
    wide = assess(data, diag, replace(Thresholds(), entropy_gap_close=0.001, loss_gap_close=0.9, loss_gap_warn=0.95))
    wcomp = {c.item: c for c in wide.comparison}
    assert comp["entropy"].judgement == "very consistent" and wcomp["entropy"].judgement == "consistent"
    assert comp["loss"].judgement == "mild overfitting" and wcomp["loss"].judgement == "generalising well"


def test_critical_verdict_and_nan_rows() -> None:
    recs = [Record(Kind.TRAIN, 10 * i, {"loss": 2.0 - 0.05 * i, "grad_norm": 1.0}) for i in range(1, 20)]
    recs.append(Record(Kind.TRAIN, 200, {"loss": 0.0, "grad_norm": math.nan, "mean_token_accuracy": 0.0}))
    recs.append(Record(Kind.EVAL, 200, {"eval_loss": math.nan}))
    data, diag = build(recs)
    a = assess(data, diag)
    rows = {m.metric: m for m in a.metrics}
    assert rows["grad_norm"].status == CRITICAL
    assert rows["loss"].status == CRITICAL and "NaN" in rows["loss"].note  # a masked 0.0, not a great loss
    assert rows["mean_token_accuracy"].status == CRITICAL
    assert a.status == CRITICAL and a.verdict.startswith("Critical: NaN/inf in training")
    assert "no NaN/inf values" not in a.positives
    d = a.to_dict()
    metrics = d["metrics"]
    assert isinstance(metrics, list) and metrics[1]["value"] == "nan"
    json.dumps(d, allow_nan=False)


def test_overfitting_verdict() -> None:
    recs = []
    for i in range(1, 101):
        recs.append(Record(Kind.TRAIN, 10 * i, {"loss": 2.0 * math.exp(-i / 15) + 0.1, "grad_norm": 1.0}))
        if i % 10 == 0:
            k = i // 10
            recs.append(
                Record(Kind.EVAL, 10 * i, {"eval_loss": [0.5, 0.4, 0.35, 0.37, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65][k - 1]})
            )
    data, diag = build(recs)
    a = assess(data, diag)
    assert a.verdict.startswith("Overfitting")
    comp = {c.item: c for c in a.comparison}
    assert comp["loss"].status == HIGH


def test_lr_rows() -> None:
    stall = [Record(Kind.TRAIN, 2 * i, {"loss": 3.9, "learning_rate": 1e-9}) for i in range(1, 11)]
    data, diag = build(stall)
    row = next(m for m in assess(data, diag).metrics if m.metric == "learning_rate")
    # the row says the findings' direction (lr_too_small found it), not a range of its own
    assert row.status == LOW and "the findings advise raising it (learning rate too small; constant)" == row.note
    # cosine at its end with max_steps known: expected
    data2, diag2 = RunData(), Diagnoser(max_steps=100)
    for i in range(1, 101):
        r = Record(Kind.TRAIN, i, {"loss": 1.0, "learning_rate": 2e-5 * 0.5 * (1 + math.cos(math.pi * i / 100))})
        data2.add(r)
        diag2.observe(r)
    row2 = next(m for m in assess(data2, diag2).metrics if m.metric == "learning_rate")
    assert row2.status == OK and "end of the schedule" in row2.note


def _lr_row(recs: list[Record]) -> tuple[str, str, list[str]]:
    data, diag = build(recs)
    a = assess(data, diag)
    row = next(m for m in a.metrics if m.metric == "learning_rate")
    return row.status, row.note, a.cautions


def test_a_large_lr_without_instability_is_no_advice() -> None:
    # 3e-3 (above lr_max) on a loss that falls smoothly: the LR rules see no instability, so the
    # row names no direction (it said "probably too large" on its own before)
    recs = [Record(Kind.TRAIN, i, {"loss": 2.0 - 0.01 * i, "grad_norm": 1.0, "learning_rate": 3e-3}) for i in range(1, 60)]
    status, note, cautions = _lr_row(recs)
    assert status == OK and "shows no instability" in note and "too large" not in note, note
    assert not [c for c in cautions if "learning" in c], cautions


def test_the_lr_row_follows_another_findings_direction() -> None:
    # a flat loss at an in-range LR: loss_plateau advises raising it, and the row says so, as
    # "watch" (the LR rules did not find the LR itself wrong); the grad_norm row, slightly high,
    # no longer adds "the learning rate may need lowering" against it
    flat = [
        Record(Kind.TRAIN, 10 * i, {"loss": 2.5 + 0.001 * (i % 3), "grad_norm": 8.5, "learning_rate": 2e-5})
        for i in range(1, 400)
    ]
    data, diag = build(flat)
    assert diag.lr_direction > 0 and any(f.code == "loss_plateau" for f in diag.findings)
    a = assess(data, diag)
    rows = {m.metric: m for m in a.metrics}
    assert rows["learning_rate"].status == WATCH and "advise raising it (loss plateau" in rows["learning_rate"].note
    assert rows["grad_norm"].status == WATCH and rows["grad_norm"].note == "slightly high: keep watching it", rows["grad_norm"]


def test_finished_and_empty() -> None:
    data, diag = build([Record(Kind.TRAIN, 10 * i, {"loss": 0.5 - 0.01 * i, "grad_norm": 1.0}) for i in range(1, 10)])
    diag.observe_event(Event(EventKind.FINISHED, "done"))
    a = assess(data, diag)
    assert a.status == GOOD and a.verdict.endswith("The run has finished.")
    empty = assess(RunData(), Diagnoser())
    assert empty.metrics == [] and empty.verdict == "No metrics yet." and empty.best_checkpoint is None


# ------------------------------------------------------------------------------------------------
# best checkpoint


def evals(*pts: tuple[int, float, float | None]) -> RunData:
    data = RunData()
    for step, loss, acc in pts:
        data.add(Record(Kind.TRAIN, step, {"loss": loss / 10}))  # train loss always lowest at the end
        m = {"eval_loss": loss}
        if acc is not None:
            m["eval_mean_token_accuracy"] = acc
        data.add(Record(Kind.EVAL, step, m))
    return data


def mkdirs(base: str, *names: str) -> None:
    for n in names:
        os.makedirs(os.path.join(base, n))


def test_best_is_lowest_eval_loss_not_train_loss(tmp_path: str) -> None:
    base = str(tmp_path)
    mkdirs(base, "checkpoint-100", "checkpoint-200", "checkpoint-300")
    data = evals((100, 1.2, 0.6), (200, 0.9, 0.7), (300, 1.1, 0.72))
    bc = best_checkpoint(data, os.path.join(base, "train.log"))
    assert bc is not None
    assert bc["step"] == 200 and bc["eval_loss"] == 0.9 and bc["eval_token_accuracy"] == 0.7
    assert bc["path"] == os.path.join(base, "checkpoint-200") and bc["note"] is None


def test_ties_go_to_higher_accuracy(tmp_path: str) -> None:
    data = evals((100, 0.9, 0.70), (200, 0.9, 0.75), (300, 0.9, 0.72))
    bc = best_checkpoint(data, os.path.join(str(tmp_path), "train.log"))
    assert bc is not None and bc["step"] == 200


def test_deleted_by_save_total_limit(tmp_path: str) -> None:
    base = str(tmp_path)
    mkdirs(base, "checkpoint-400", "checkpoint-500")
    data = evals((100, 1.0, None), (200, 0.8, None), (300, 0.85, None), (400, 0.9, None), (500, 0.95, None))
    bc = best_checkpoint(data, os.path.join(base, "train.log"))
    # the lowest eval_loss among the checkpoints that exist, and a word on the lower one gone
    assert bc is not None and bc["step"] == 400 and bc["path"] == os.path.join(base, "checkpoint-400")
    note = str(bc["note"])
    assert "0.8 at step 200: checkpoint-200 no longer exists" in note and "save_total_limit" in note
    assert "checkpoint-400, checkpoint-500" in note


def test_not_saved_and_no_checkpoints(tmp_path: str) -> None:
    base = str(tmp_path)
    data = evals((15, 1.0, None), (30, 1.1, None))
    bc = best_checkpoint(data, os.path.join(base, "train.log"))
    assert bc is not None and "no checkpoint-N directories" in str(bc["note"])
    mkdirs(base, "checkpoint-30")
    bc = best_checkpoint(data, os.path.join(base, "train.log"))
    assert bc is not None and bc["step"] == 30 and bc["path"] == os.path.join(base, "checkpoint-30")
    assert "1 at step 15: checkpoint-15 was not saved" in str(bc["note"])
    other_base = os.path.join(base, "other")
    mkdirs(other_base, "checkpoint-100")  # no eval near the one saved step
    other = evals((15, 1.0, None), (25, 1.1, None))
    bc = best_checkpoint(other, os.path.join(other_base, "train.log"))
    assert bc is not None and bc["path"] is None and "no checkpoint was saved at step 15" in str(bc["note"])


def test_inferred_eval_step_and_nested_dirs(tmp_path: str) -> None:
    base = str(tmp_path)
    # HF stdout carries no step: the eval (and save) at step 15 is placed at the last train step,
    # 14 when logging every 2 steps
    data = RunData()
    for s in range(2, 31, 2):
        data.add(Record(Kind.TRAIN, s, {"loss": 1.0}))
    data.add(Record(Kind.EVAL, 14, {"eval_loss": 0.7}))
    mkdirs(base, os.path.join("output", "checkpoint-15"), os.path.join("output", "checkpoint-30"))
    bc = best_checkpoint(data, os.path.join(base, "train.log"))
    assert bc is not None and bc["path"] == os.path.join(base, "output", "checkpoint-15")
    # a checkpoint's own trainer_state.json: look beside the checkpoint directory
    mkdirs(base, "checkpoint-14")
    bc2 = best_checkpoint(data, os.path.join(base, "checkpoint-14", "trainer_state.json"))
    assert bc2 is not None and bc2["path"] == os.path.join(base, "checkpoint-14")


def test_no_eval_no_best(tmp_path: str) -> None:
    data = RunData()
    data.add(Record(Kind.TRAIN, 10, {"loss": 0.01}))
    assert best_checkpoint(data, os.path.join(str(tmp_path), "train.log")) is None
    nan_only = RunData()
    nan_only.add(Record(Kind.EVAL, 10, {"eval_loss": math.nan}))
    assert best_checkpoint(nan_only, os.path.join(str(tmp_path), "train.log")) is None


def test_checkpoint_scan_is_cached_until_a_directory_changes(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import os

    from sfttop.core import discover as assess  # (the scan lives with discovery: the remote agent lists too)

    out = tmp_path / "out"
    (out / "checkpoint-10").mkdir(parents=True)
    scans = {"n": 0}
    real = assess._scan_checkpoints

    def counting(base: str):  # type: ignore[no-untyped-def]
        scans["n"] += 1
        return real(base)

    monkeypatch.setattr(assess, "_scan_checkpoints", counting)
    assert set(assess.checkpoint_dirs(str(tmp_path))) == {10}
    for _ in range(5):
        assert set(assess.checkpoint_dirs(str(tmp_path))) == {10}
    assert scans["n"] == 1
    (out / "checkpoint-20").mkdir()  # a save, one level down
    st = os.stat(out)
    os.utime(out, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))  # (a coarse clock)
    assert set(assess.checkpoint_dirs(str(tmp_path))) == {10, 20}
    assert scans["n"] == 2


def test_an_lr_that_decayed_to_zero_and_holds_is_the_schedules_end() -> None:
    # llm.c / nanoGPT: a linear decay from 6e-4 to 0, then the last steps at 0, max_steps not in
    # the log; the row said "below 1e-07 ... (constant)" for it
    recs = [
        Record(Kind.TRAIN, i, {"loss": 3.0 + 8.0 * math.exp(-i / 40), "grad_norm": 0.3,
                               "learning_rate": max(0.0, 6e-4 * (1 - i / 280))})
        for i in range(1, 301)
    ]
    status, note, cautions = _lr_row(recs)
    assert status == OK, note
    assert note == "near zero at the end of the schedule (decayed from its peak 0.0005979 and holding at 0)"
    assert not [c for c in cautions if "learning" in c or "lr" in c], cautions
