"""Losses of exactly zero (issue #14, part 3): nothing trained from the first record is a
critical ``nothing_trained`` at once, and a zero loss never reads as "memorising"."""

from __future__ import annotations

import math

from helpers import diagnose_all
from sfttop.core.assess import CRITICAL, assess
from sfttop.core.diagnose import Severity
from sfttop.core.records import Kind, Record


def _train(step: int, loss: float, grad: float | None) -> Record:
    m = {"loss": loss, "learning_rate": 1e-4}
    if grad is not None:
        m["grad_norm"] = grad
    return Record(Kind.TRAIN, step, m, None)


def test_all_zero_from_the_first_record_is_critical_at_once() -> None:
    data, diag = diagnose_all(_train(10 * (i + 1), 0.0, 0.0) for i in range(100))
    (f,) = [f for f in diag.findings if f.code == "nothing_trained"]
    assert f.severity is Severity.CRITICAL and f.step == 20 and f.active
    assert "steps 10-20" in f.message
    a = assess(data, diag)
    assert a.status == CRITICAL and "nothing is trained" in a.verdict
    loss = next(r for r in a.metrics if r.metric == "loss")
    assert loss.status == CRITICAL and "memoris" not in loss.note


def test_without_grad_norm_too() -> None:
    _data, diag = diagnose_all(_train(i + 1, 0.0, None) for i in range(30))
    assert [f.step for f in diag.findings if f.code == "nothing_trained"] == [2]


def test_a_real_loss_first_is_never_nothing_trained() -> None:
    recs = [_train(i + 1, 2.0 - 0.01 * i, 1.0) for i in range(50)] + [_train(51 + i, 0.0, 0.0) for i in range(5)]
    _data, diag = diagnose_all(recs)
    assert not [f for f in diag.findings if f.code == "nothing_trained"]


def test_one_zero_record_then_training_closes_nothing() -> None:
    recs = [_train(1, 0.0, 0.0)] + [_train(i + 2, 2.0 - 0.01 * i, 1.0) for i in range(50)]
    _data, diag = diagnose_all(recs)
    assert not [f for f in diag.findings if f.code == "nothing_trained"]


def test_training_that_starts_late_closes_the_episode() -> None:
    recs = [_train(i + 1, 0.0, 0.0) for i in range(5)] + [_train(i + 6, 2.0 - 0.01 * i, 1.0) for i in range(50)]
    _data, diag = diagnose_all(recs)
    (f,) = [f for f in diag.findings if f.code == "nothing_trained"]
    assert not f.active and f.end_step == 6


def test_nan_printed_as_zero_after_a_huge_loss_is_not_memorising() -> None:
    recs = [_train(i + 1, 2.0 - 0.01 * i, 1.0) for i in range(30)]
    recs += [_train(31, 7.8e12, 1e9), _train(32, 0.0, math.nan), _train(33, 0.0, math.nan)]
    data, diag = diagnose_all(recs)
    a = assess(data, diag)
    assert a.status == CRITICAL
    assert not any("memoris" in r.note for r in a.metrics), [r.note for r in a.metrics]


def test_a_masked_nan_without_grad_norm_drives_the_assessment() -> None:
    """No grad_norm logged: the 0.0 the Trainer prints for a NaN after a loss of 7.8e12 is read as
    NaN by the diagnoser, and the assessment's loss row says so (never "memorising")."""
    recs = [_train(i + 1, 2.0 - 0.01 * i, None) for i in range(30)]
    recs += [_train(31, 7.8e12, None)] + [_train(32 + i, 0.0, None) for i in range(4)]
    data, diag = diagnose_all(recs)
    assert any(f.code == "loss_nonfinite" and f.active for f in diag.findings)
    a = assess(data, diag)
    loss = next(r for r in a.metrics if r.metric == "loss")
    assert loss.status == CRITICAL and "NaN" in loss.note and "memoris" not in loss.note
    assert a.status == CRITICAL


def test_a_loss_that_came_down_to_zero_with_a_gradient_is_memorising() -> None:
    recs = [_train(i + 1, 2.0 * 0.8**i, 0.5) for i in range(40)] + [_train(41 + i, 0.0, 0.01) for i in range(5)]
    data, diag = diagnose_all(recs)
    assert not [f for f in diag.findings if f.code in ("nothing_trained", "loss_nonfinite")]
    loss = next(r for r in assess(data, diag).metrics if r.metric == "loss")
    assert loss.status != CRITICAL and "memorising" in loss.note
