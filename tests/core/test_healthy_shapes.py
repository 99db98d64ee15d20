"""Issue 14's false alarms on healthy runs, each as the synthetic shape of the real run that raised
it, beside its pathological twin, which must still be named: a rule quiet on the healthy shape
only because it went blind would fail the twin."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from sfttop.core.config import Thresholds
from sfttop.core.diagnose import Diagnoser, Severity
from sfttop.core.records import Kind, Record
from synth import cosine_lr, phase_start_loss, small_batch_loss


def run(
    losses: Sequence[float],
    *,
    grads: Sequence[float] | None = None,
    lrs: Sequence[float] | None = None,
    every: int = 1,
    cap: int | None = None,
    max_steps: int | None = None,
    t: Thresholds | None = None,
) -> Diagnoser:
    d = Diagnoser(t, max_steps=max_steps) if cap is None else Diagnoser(t, max_steps=max_steps, history_cap=cap)
    for i, x in enumerate(losses):
        m = {"loss": x, "grad_norm": grads[i] if grads is not None else 1.0}
        m["learning_rate"] = lrs[i] if lrs is not None else 3e-4
        d.observe(Record(Kind.TRAIN, (i + 1) * every, m))
    return d


def alarms(d: Diagnoser) -> list[tuple[str, int]]:
    """Warning and critical findings, as (code, step)."""
    return [(f.code, f.step) for f in d.findings if f.severity >= Severity.WARNING]


def named(d: Diagnoser, code: str) -> list[int]:
    return [f.step for f in d.findings if f.code == code and f.severity >= Severity.WARNING]


# ------------------------------------------------------------------------------------------------
# loss_oscillation


@pytest.mark.parametrize("seed", range(4))
def test_small_batch_sft_noise_is_no_oscillation(seed: int) -> None:
    # (nanochat chat SFT) 25% from step to step: 1.5x the median is two of its sigmas, a "rebound"
    # from the low of three points every few dozen steps, a 2x "spike" every few hundred
    n = 700
    d = run(small_batch_loss(n, seed), lrs=cosine_lr(n, 2e-4))
    assert named(d, "loss_oscillation") == []


def test_rebounds_far_beyond_the_noise_are_still_oscillation() -> None:
    noisy = small_batch_loss(700, 0)
    bumpy = noisy[:400] + [0.8, 3.2, 0.7] * 6 + noisy[400:]
    (step,) = named(run(bumpy, lrs=cosine_lr(718, 2e-4)), "loss_oscillation")
    assert 400 < step <= 410


def test_an_ema_loss_catching_up_at_a_phase_start_is_no_divergence() -> None:
    # (nanochat mid-training) a debiased EMA of a loss that stepped up once, on the first batch,
    # then held: the EMA rises for a dozen points, the loss does not
    for seed in range(6):
        assert named(run(phase_start_loss(60, seed)), "loss_oscillation") == []


def test_a_loss_that_keeps_climbing_is_still_diverging() -> None:
    start = phase_start_loss(30, 0)
    losses = start + [start[-1] * 1.04**k for k in range(1, 15)]
    (f,) = [f for f in run(losses).findings if f.code == "loss_oscillation"]
    assert "diverging" in f.message and f.step == 40
