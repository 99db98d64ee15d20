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
