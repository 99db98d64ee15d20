"""The stability rules on real-shaped runs: divergence, instability, the LR and gradient rules
without false alarms, fp16 loss-scaler skips, and advice computed from the run."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

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
