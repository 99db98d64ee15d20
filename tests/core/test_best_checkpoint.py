"""The best checkpoint (issue #14, item 9): full precision from trainer_state.json, ties at the
log's printed precision, post-training evals, and the lowest eval_loss among saved checkpoints.

The logs are written the way transformers 5 prints them (every value a quoted ``'%.4g'``
string, no step: the step comes from ``logging_steps`` in the trainer_state.json beside it)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from helpers import REAL
from sfttop.core.config import Config
from sfttop.core.report import build

LOGGING = 10


def _g(v: float) -> str:
    return f"'{v:.4g}'"


def _write_run(
    d: Path,
    evals: dict[int, float],
    saved: tuple[int, ...],
    state: dict[int, float] | None = None,
    post_eval: float | None = None,
    last: int = 60,
) -> Path:
    """A tf5-shaped stdout log (train every LOGGING steps, the given evals, the summary, then
    maybe a post-training evaluate()), checkpoint-N dirs, and a trainer_state.json whose evals
    are ``state`` (full precision; default: the evals)."""
    lines, history = [], []
    for step in range(LOGGING, last + 1, LOGGING):
        loss = 2.0 - step / 100
        bar = f"{100 * step // last:3d}%|#####     | {step}/{last} [00:01<00:01, 9.87it/s]"
        lines.append(
            f"{bar}{{'loss': {_g(loss)}, 'grad_norm': '1.2', 'learning_rate': '0.0001', 'epoch': {_g(step / last)}}}"
        )
        history.append({"loss": loss, "grad_norm": 1.2, "learning_rate": 1e-4, "epoch": step / last, "step": step})
        if step in evals:
            lines.append(f"{{'eval_loss': {_g(evals[step])}, 'eval_runtime': '0.5', 'epoch': {_g(step / last)}}}")
            full = (state or evals)[step]
            history.append({"eval_loss": full, "eval_runtime": 0.5, "epoch": step / last, "step": step})
    lines.append("{'train_runtime': '12.5', 'train_samples_per_second': '40', 'train_loss': '1.7', 'epoch': '1'}")
    history.append({"train_runtime": 12.5, "train_loss": 1.7, "epoch": 1.0, "step": last})
    if post_eval is not None:
        lines.append(f"{{'eval_loss': {_g(post_eval)}, 'eval_runtime': '0.5', 'epoch': '1'}}")
        history.append({"eval_loss": post_eval, "eval_runtime": 0.5, "epoch": 1.0, "step": last})
    d.mkdir(parents=True, exist_ok=True)
    log = d / "train.log"
    log.write_text("\n".join(lines) + "\n")
    st = {"global_step": last, "logging_steps": LOGGING, "max_steps": last, "log_history": history}
    (d / "trainer_state.json").write_text(json.dumps(st))
    for s in saved:
        (d / f"checkpoint-{s}").mkdir()
    return log


def _report(path: Path) -> dict[str, object]:
    report, _ = build([str(path)], Config(), clock=lambda: 2e9)
    (run,) = report["runs"]
    assert isinstance(run, dict)
    return run


def _best(path: Path) -> dict[str, object]:
    bc = _report(path)["best_checkpoint"]
    assert isinstance(bc, dict)
    return bc


def test_full_precision_breaks_a_tie_at_printed_precision(tmp_path: Path) -> None:
    # both evals print '0.4853'; the state says step 40 is lower, and only it was kept
    log = _write_run(tmp_path, {20: 0.4853, 40: 0.4853}, (40, 60), state={20: 0.48534, 40: 0.485271})
    bc = _best(log)
    assert bc["step"] == 40 and bc["eval_loss"] == 0.485271
    assert bc["path"] == str(tmp_path / "checkpoint-40")
    note = str(bc["note"])
    assert "tie at the log's printed precision with step 20" in note and "trainer_state.json" in note, note


def test_full_precision_can_overturn_the_printed_order(tmp_path: Path) -> None:
    # printed 0.4853 < 0.4854, but at full precision step 40 is the lower (0.485349 vs 0.48535)
    log = _write_run(tmp_path, {20: 0.4853, 40: 0.4854}, (20, 40), state={20: 0.48535, 40: 0.485349})
    assert _best(log)["step"] == 40


def test_a_tie_without_a_state_prefers_the_checkpoint_that_exists(tmp_path: Path) -> None:
    log = _write_run(tmp_path, {20: 0.4853, 40: 0.4853}, (40, 60))
    (tmp_path / "trainer_state.json").unlink()
    bc = _best(log)
    assert bc["step"] == 40 and bc["path"] == str(tmp_path / "checkpoint-40")
    assert "a tie on eval_loss 0.4853 with step 20: the one whose checkpoint exists" in str(bc["note"])


def test_a_state_of_another_run_is_not_used(tmp_path: Path) -> None:
    log = _write_run(tmp_path, {20: 0.50, 40: 0.45}, (20, 40), state={20: 0.30, 40: 0.45})
    bc = _best(log)
    assert bc["step"] == 40 and bc["eval_loss"] == 0.45  # the log's values: the state disagrees at step 20


def test_a_post_training_eval_does_not_overwrite_the_last_eval(tmp_path: Path) -> None:
    # trainer.evaluate() after training (here on another set): printed after the summary, at
    # the last step, where a worse eval was logged during training
    log = _write_run(tmp_path, {20: 0.40, 40: 0.45, 60: 0.52}, (20, 40, 60), post_eval=0.35)
    run = _report(log)
    bc = run["best_checkpoint"]
    assert isinstance(bc, dict) and bc["step"] == 20 and bc["eval_loss"] == 0.40 and bc["note"] is None
    latest = run["latest"]
    assert isinstance(latest, dict) and latest["eval"]["eval_loss"] == 0.52
    # and the diagnoser judged the run's own evals only
    (tmp_path / "trainer_state.json").unlink()
    bc2 = _best(log)
    assert bc2["step"] == 20 and bc2["eval_loss"] == 0.40


def test_the_final_models_eval_after_the_summary_still_counts(tmp_path: Path) -> None:
    # no eval at the last step during training; trainer.evaluate() of the final model after
    # the summary, with the run's epoch, is that step's eval (a DPO run in ../shared/logs)
    log = _write_run(tmp_path, {20: 0.50, 40: 0.45}, (20, 40, 60), post_eval=0.44)
    bc = _best(log)
    assert bc["step"] == 60 and bc["eval_loss"] == 0.44 and bc["path"] == str(tmp_path / "checkpoint-60")


def test_a_lower_eval_whose_checkpoint_is_gone_is_said(tmp_path: Path) -> None:
    log = _write_run(tmp_path, {10: 0.9, 20: 0.5, 30: 0.6, 40: 0.7}, (30, 40))
    bc = _best(log)
    assert bc["step"] == 30 and bc["path"] == str(tmp_path / "checkpoint-30")
    assert "the lowest eval_loss, 0.5 at step 20: checkpoint-20 no longer exists" in str(bc["note"])


def _lowest_saved(run_dir: Path) -> int | None:
    """From the Trainer's own files: the saved checkpoint with the lowest full-precision eval_loss."""
    states = [run_dir / "trainer_state.json", *sorted(run_dir.glob("checkpoint-*/trainer_state.json"))]
    history: dict[int, float] = {}
    for p in states:
        if p.exists():
            for h in json.loads(p.read_text())["log_history"]:
                if "train_runtime" in h:
                    break
                if "eval_loss" in h:
                    history[h["step"]] = h["eval_loss"]
    saved = [int(p.name.split("-")[1]) for p in run_dir.glob("checkpoint-*")]
    cands = [(history[s], s) for s in saved if s in history]
    return min(cands)[1] if cands else None


CASES = sorted(
    str(p.relative_to(REAL))
    for p in REAL.glob("tf*/*")
    if p.is_dir() and any(p.glob("checkpoint-*")) and (p / "train.log").exists()
)


@pytest.mark.parametrize("case", CASES)
def test_the_answer_is_the_lowest_full_precision_eval_among_saved_checkpoints(case: str) -> None:
    run_dir = REAL / case
    want = _lowest_saved(run_dir)
    if want is None:
        pytest.skip("no eval at a saved step")
    mtime = max(os.stat(p).st_mtime for p in run_dir.rglob("*") if p.is_file())
    report, _ = build([str(run_dir / "train.log")], Config(), clock=lambda: mtime)
    bc = report["runs"][0]["best_checkpoint"]
    assert bc is not None and bc["step"] == want and str(bc["path"]).endswith(f"checkpoint-{want}"), bc
