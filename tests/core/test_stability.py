"""The stability rules on real-shaped runs: divergence, instability, the LR and gradient rules
without false alarms, fp16 loss-scaler skips, and advice computed from the run."""

from __future__ import annotations

import math
import os
import random
from collections.abc import Iterable, Sequence
from pathlib import Path

import pytest

from helpers import REAL
from sfttop.core.diagnose import Diagnoser, Finding, Severity
from sfttop.core.records import Kind, Record


def tr(step: int, **metrics: float) -> Record:
    return Record(Kind.TRAIN, step, {k: float(v) for k, v in metrics.items()})


def feed(d: Diagnoser, recs: Iterable[Record]) -> list[Finding]:
    opened: list[Finding] = []
    for r in recs:
        opened += d.observe(r)
    return opened


def run(
    losses: Sequence[float],
    *,
    grads: Sequence[float] | None = None,
    lrs: Sequence[float] | None = None,
    every: int = 1,
    start: int = 1,
) -> list[Record]:
    return [
        tr(
            (start + i) * every,
            loss=x,
            grad_norm=grads[i] if grads is not None else 1.0,
            learning_rate=lrs[i] if lrs is not None else 2e-5,
        )
        for i, x in enumerate(losses)
    ]


def of(d: Diagnoser, code: str) -> list[Finding]:
    return [f for f in d.findings if f.code == code]


# ------------------------------------------------------------------------------------------------
# divergence


def test_a_jump_of_orders_of_magnitude_is_a_critical_divergence_at_once() -> None:
    # (an HF run whose loss went from ~2 to 7.8e12 in one logging interval, then the Trainer's
    # masked NaN: a 0.0 with no grad_norm)
    losses = [2.4 - 0.02 * k for k in range(30)]
    d = Diagnoser()
    feed(d, run(losses))
    opened = d.observe(tr(31, loss=7.8e12, grad_norm=1.0, learning_rate=2e-5))
    assert [f.code for f in opened] == ["divergence"]
    (f,) = opened
    assert f.severity is Severity.CRITICAL and f.step == 31
    assert "orders of magnitude" in f.message and "7.8e+12" in f.message
    assert of(d, "loss_oscillation") == []
    assert d.worst() is Severity.CRITICAL


def test_an_early_blow_up_is_a_divergence_not_an_oscillation() -> None:
    d = Diagnoser()
    feed(d, run([3.9, 3.8, 3.85, 950.0, 1200.0, 1800.0, 2500.0, 2100.0]))
    (f,) = d.findings
    assert f.code == "divergence" and f.step == 4 and f.active


def test_a_recovered_spike_is_not_a_divergence() -> None:
    # 20x is a spike (an oscillation warning), not two orders of magnitude
    d = Diagnoser()
    feed(d, run([2.0 - 0.01 * k for k in range(30)] + [36.0] + [1.7] * 20))
    assert of(d, "divergence") == [] and len(of(d, "loss_oscillation")) == 1


def test_a_divergence_closes_once_the_loss_is_back() -> None:
    d = Diagnoser()
    feed(d, run([2.0] * 25 + [5e4, 4e4] + [2.0] * 10))
    (f,) = of(d, "divergence")
    assert not f.active and f.end_step is not None


# ------------------------------------------------------------------------------------------------
# learning rate


def warmup_cosine(n: int, peak: float, warm: int) -> list[float]:
    return [
        peak * (i + 1) / warm if i < warm else peak * 0.5 * (1 + math.cos(math.pi * (i + 1 - warm) / (n - warm)))
        for i in range(n)
    ]


def falling(n: int, start: float = 3.8, floor: float = 1.2, seed: int = 0) -> list[float]:
    r = random.Random(seed)
    return [(floor + (start - floor) * math.exp(-5 * i / n)) * (1 + 0.02 * r.gauss(0, 1)) for i in range(n)]


def test_a_well_behaved_run_at_a_high_peak_has_no_lr_finding() -> None:
    # (the real healthy fixtures: a small model at peak 1.5e-3..3e-3, warmup and cosine)
    for peak in (1.05e-3, 2e-3, 3e-3):
        d = Diagnoser(max_steps=120)
        feed(d, run(falling(60), lrs=warmup_cosine(60, peak, 6), every=2))
        assert d.findings == [], [f.message for f in d.findings]


def test_lr_too_large_needs_instability_and_says_which() -> None:
    r = random.Random(1)
    losses = [3.9, 3.8, 3.7] + [4.0 + 1.2 * r.random() for _ in range(40)]
    losses[10] = 9.0  # a climb well above its best
    d = Diagnoser()
    feed(d, run(losses, lrs=[0.05] * len(losses)))
    (f,) = of(d, "lr_too_large")
    assert "unstable" in f.message and "loss_oscillation" in f.message
    assert any("0.05 -> 0.005..0.017" in a for a in f.advice), f.advice
    assert any(a.startswith("add a warmup") for a in f.advice)  # (no warmup: it started at its peak)


def test_no_warmup_advice_during_warmup() -> None:
    # (the real oscillate fixture: constant_with_warmup to 0.5, the loss climbs at step 5-7)
    losses = [3.93, 3.95, 3.85, 3.61, 5.4, 7.02, 9.07, 7.36, 7.43, 5.78]
    lrs = [0.05 * k for k in range(10)]
    d = Diagnoser()
    feed(d, run(losses, lrs=lrs))
    assert {"loss_oscillation", "lr_too_large"} <= {f.code for f in d.findings}
    for f in d.findings:
        assert not any("warmup" in a for a in f.advice), (f.code, f.advice)
        assert not any(a == "lower the learning rate" for a in f.advice)


def test_lr_late_in_a_decaying_schedule_is_not_too_small() -> None:
    # (a real DPO run: peak 5e-7, linear decay; at step 140 of 160 the LR is 8.1e-8)
    n = 16
    lrs = [5e-7 * (1 - (i + 1) / (n + 0.5)) for i in range(n)]
    d = Diagnoser(max_steps=160)
    feed(d, run(falling(n, 0.69, 0.4), lrs=lrs, every=10))
    assert of(d, "lr_too_small") == []


def test_lr_far_below_its_schedule_is_too_small() -> None:
    lrs = [2e-5] * 10 + [5e-8] * 20
    d = Diagnoser(max_steps=300)
    feed(d, run(falling(30), lrs=lrs, every=10))
    (f,) = of(d, "lr_too_small")
    assert "of max_steps 300" in f.message


def test_advice_has_no_seed_example_numbers() -> None:
    from sfttop.core.diagnose import ADVICE

    text = repr(ADVICE)
    assert "3e-6" not in text and "5e-6" not in text


def test_plateau_advice_is_computed_from_the_run() -> None:
    d = Diagnoser()
    feed(d, run([2.0 + 0.001 * (k % 3) for k in range(200)], lrs=[1e-4] * 200, every=10))
    (f,) = of(d, "loss_plateau")
    assert any("1e-04 -> 1.5e-04..2e-04" in a or "0.0001 -> 0.00015..0.0002" in a for a in f.advice), f.advice


def test_one_lr_direction_per_run() -> None:
    # unstable early (lower), then a long flat stretch (a plateau would say raise): one direction
    r = random.Random(2)
    losses = [3.0, 2.9, 2.8, 8.0, 7.5, 3.0] + [2.5 + 0.002 * r.random() for _ in range(300)]
    d = Diagnoser()
    feed(d, run(losses, lrs=[1e-4] * len(losses), every=10))
    assert of(d, "loss_oscillation") and of(d, "loss_plateau")
    advice = [a for f in d.findings for a in f.advice]
    assert any(a.startswith("lower the learning rate") for a in advice)
    assert not any(a.startswith("raise the learning rate") for a in advice)


# ------------------------------------------------------------------------------------------------
# gradients


def test_a_spike_of_a_small_norm_is_not_high() -> None:
    # (a real converging LoRA run: grad_norm 0.045 then 0.17, 3.8x the median; 0.75 against 0.2)
    r = random.Random(4)
    grads = [0.045 * (1 + 0.1 * r.gauss(0, 1)) for _ in range(40)]
    grads[30] = grads[31] = 0.17  # (two points in a row: one alone is a batch, never a finding)
    d = Diagnoser()
    feed(d, run(falling(40, 0.4, 0.02), grads=grads))
    assert of(d, "grad_norm_high") == []
    grads[30] = grads[31] = 0.75 * 0.045 / 0.2 * 20  # a spike well above the clipping norm still counts
    d2 = Diagnoser()
    feed(d2, run(falling(40, 0.4, 0.02), grads=grads))
    assert len(of(d2, "grad_norm_high")) == 1


def test_close_spikes_are_one_grad_norm_high_episode() -> None:
    r = random.Random(5)
    grads = [0.3 * (1 + 0.1 * r.gauss(0, 1)) for _ in range(120)]
    for k in (40, 52, 61):  # three spikes of two points within a window of each other
        grads[k] = grads[k + 1] = 2.5
    d = Diagnoser()
    feed(d, run(falling(120), grads=grads))
    (f,) = of(d, "grad_norm_high")
    assert f.step == 42 and not f.active


def test_converged_run_has_no_vanishing_gradients() -> None:
    # (a real Unsloth run: the loss falls to ~0.001 and the grad norm to ~0.002)
    n = 60
    losses = [0.37 * math.exp(-i / 6) + 0.0008 for i in range(n)]
    grads = [2.0 * math.exp(-i / 6) + 0.0015 for i in range(n)]
    d = Diagnoser()
    feed(d, run(losses, grads=grads, lrs=warmup_cosine(n, 2e-4, 5)))
    assert of(d, "grad_vanishing") == []


def test_vanishing_gradients_on_a_stuck_loss_is_one_episode() -> None:
    # (a real Megatron run: loss 10.4 and grad_norm 0 from the start; one that flickers around
    # the floor opens one episode, not one per dip)
    d = Diagnoser()
    feed(d, run([10.4] * 15, grads=[0.0] * 15))
    (f,) = of(d, "grad_vanishing")
    assert "10.4" in f.message
    grads = [0.002 if (k // 6) % 2 == 0 else 0.03 for k in range(80)]
    d2 = Diagnoser()
    feed(d2, run([3.0 + 0.001 * (k % 2) for k in range(80)], grads=grads))
    assert len(of(d2, "grad_vanishing")) == 1


# ------------------------------------------------------------------------------------------------
# fp16 loss-scaler skips


def _fp16_run(skips: Sequence[int], n: int = 30) -> list[Record]:
    """(a real Unsloth fp16 run: warmup to 2e-4 then linear decay; at a skipped step grad_norm is
    nan or inf, the loss finite and the LR where it was, since the scheduler did not step)"""
    out = []
    lr = 0.0
    k = 0  # optimizer steps taken
    for i in range(n):
        step = i + 1
        skipped = step in skips
        if not skipped:
            k += 1
            lr = 2e-4 * min(k / 5, max(0.0, (n + 5 - k) / n))
        loss = 0.3 * math.exp(-i / 10) + 0.05
        grad = math.inf if skipped else 1.5 * math.exp(-i / 10) + 0.1
        out.append(tr(step, loss=loss if not skipped else 1.656, grad_norm=grad, learning_rate=lr))
    return out


def test_a_step_skipped_by_the_loss_scaler_is_counted_not_critical() -> None:
    d = Diagnoser()
    feed(d, _fp16_run([5, 18]))
    (f,) = d.findings
    assert f.code == "steps_skipped" and f.severity is Severity.INFO and f.step == 5
    assert f.message.startswith("2 steps skipped by the fp16 loss scaler, latest at step 18")
    assert d.worst() is Severity.INFO


def test_many_skips_in_a_row_are_critical() -> None:
    d = Diagnoser()
    feed(d, _fp16_run(list(range(12, 20))))
    crit = of(d, "loss_nonfinite")
    assert [f.step for f in crit] == [16]  # the fifth skipped record in a row
    assert "5 records in a row (steps 12-16)" in crit[0].message


def test_a_nan_with_the_schedule_moving_on_is_still_critical_at_once() -> None:
    recs = run([2.0 - 0.01 * k for k in range(20)], lrs=[2e-4 * (1 - k / 40) for k in range(20)])
    recs[12].metrics["grad_norm"] = math.nan
    d = Diagnoser()
    feed(d, recs)
    (f,) = d.findings
    assert f.code == "loss_nonfinite" and f.step == 13


# ------------------------------------------------------------------------------------------------
# training_unstable


def _unstable_run(n: int = 150, seed: int = 6) -> list[Record]:
    """(the issue's run at a far too high constant LR: the loss swings 3.2-4.4 with no net
    progress, grad_norm 0.7-9, eval accuracy 0.26 -> 0.10 -> 0.26 -> 0.12 every 30 steps)"""
    r = random.Random(seed)
    out: list[Record] = []
    accs = [0.26, 0.10, 0.26, 0.12, 0.25, 0.11, 0.24]
    for i in range(n):
        step = i + 1
        loss = 5.5 - 1.7 * i / 10 if i < 10 else 3.2 + 1.2 * r.random()
        grad = 0.7 * math.exp(r.random() * math.log(9 / 0.7))
        out.append(tr(step, loss=loss, grad_norm=grad, learning_rate=0.05))
        if step % 30 == 0:
            out.append(
                Record(
                    Kind.EVAL,
                    step,
                    {"eval_loss": 3.9 + 0.3 * r.random(), "eval_mean_token_accuracy": accs[step // 30 - 1]},
                )
            )
    return out


def test_training_unstable_is_named_once_with_its_evidence() -> None:
    d = Diagnoser()
    feed(d, _unstable_run())
    (f,) = of(d, "training_unstable")
    assert f.severity is Severity.WARNING and f.active
    assert "no net progress" in f.message and "grad_norm" in f.message and "learning_rate 0.05" in f.message
    lo, hi = (float(x) for x in f.message.split("swings ")[1].split(" ")[0].split("-"))
    assert 3.2 <= lo < hi <= 4.4
    assert of(d, "lr_too_large") == [] or of(d, "lr_too_large")[0].step < f.step
    assert len(of(d, "accuracy_drop")) <= 1  # (the eval swings are in its message, not more findings)
    assert any(a.startswith("lower the learning rate 3-10x: its peak 0.05") for a in f.advice)


def test_the_eval_swings_alone_are_evidence() -> None:
    recs = _unstable_run(180)
    for rec in recs:
        if rec.kind is Kind.TRAIN:
            rec.metrics["grad_norm"] = 1.0
    d = Diagnoser()
    feed(d, recs)
    (f,) = of(d, "training_unstable")
    assert "eval accuracy" in f.message


def test_a_noisy_but_progressing_run_is_not_unstable() -> None:
    r = random.Random(8)
    losses = [(1.0 + 2.5 * math.exp(-4 * i / 300)) * (1 + 0.1 * r.gauss(0, 1)) for i in range(300)]
    grads = [0.7 * math.exp(r.random() * math.log(9 / 0.7)) for _ in range(300)]
    d = Diagnoser()
    feed(d, run(losses, grads=grads, lrs=[2e-5] * 300))
    assert of(d, "training_unstable") == []


def test_a_noisy_flat_run_with_steady_gradients_is_not_unstable() -> None:
    # (a long pretraining-like plateau with 10% per-point noise: no swing evidence beyond the loss)
    r = random.Random(9)
    losses = [3.0 * (1 + 0.1 * r.gauss(0, 1)) for _ in range(400)]
    grads = [0.3 * (1 + 0.1 * r.gauss(0, 1)) for _ in range(400)]
    d = Diagnoser()
    feed(d, run(losses, grads=grads, lrs=[2e-5] * 400))
    assert of(d, "training_unstable") == []


# ------------------------------------------------------------------------------------------------
# the real healthy runs (TRL SFTTrainer on transformers 4 and 5, as a log and as TensorBoard events)



@pytest.mark.parametrize(
    "path",
    [
        str(REAL / ver / name / ("train.log" if ver.startswith("tf") else ""))
        for ver in ("tf4", "tf5", "tb4", "tb5")
        for name in ("healthy", "healthy_multi", "resumed")
    ],
    ids=lambda p: "/".join(Path(p).parts[-3:]),
)
def test_healthy_real_runs_end_with_no_warning_and_no_critical(path: str) -> None:
    from sfttop.core.config import Config
    from sfttop.core.report import build

    report, code = build([path], Config(), clock=lambda: os.stat(path).st_mtime + 1)
    (r,) = report["runs"]
    assert code == 0
    assert [f for f in r["findings"] if f["severity"] != "info"] == []


def test_swinging_gradients_with_steady_evals_are_not_unstable() -> None:
    # (a preference run on a plateau: noisy loss and gradients, frequent evals that hold)
    recs = [r for r in _unstable_run(180) if r.kind is Kind.TRAIN]
    for step in range(5, 181, 5):
        recs.append(Record(Kind.EVAL, step, {"eval_loss": 3.9, "eval_mean_token_accuracy": 0.6}))
    recs.sort(key=lambda r: (r.step, r.kind is Kind.EVAL))
    d = Diagnoser()
    feed(d, recs)
    assert of(d, "training_unstable") == []
