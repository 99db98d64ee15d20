"""The verdict and the positive signals agree with the findings (issue #14, part 1).

On the real TRL runs in tests/fixtures/real: a report that exits 1 never reads "Healthy", a
closed critical episode is named in the verdict, and no positive line praises a metric that a
finding (open or closed: the report lists both) calls bad.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from helpers import ROOT, diagnose_all, shared
from sfttop.core.assess import GOOD, assess
from sfttop.core.config import Config
from sfttop.core.records import Kind, Record
from sfttop.core.report import build

REAL = ROOT / "tests" / "fixtures" / "real"
CASES = sorted(f"{v.name}/{c.name}" for v in REAL.iterdir() if v.is_dir() for c in v.iterdir() if c.is_dir())

# a positive line (by a phrase in it) -> the finding codes it must never stand beside
CONTRADICTS: dict[str, set[str]] = {
    "grad_norm stable": {"grad_explosion", "grad_norm_high", "grad_vanishing"},
    "token accuracy": {"overfitting_severe", "accuracy_drop"},
    "eval accuracy only": {"accuracy_drop"},
    "train loss is": {"loss_plateau", "loss_nonfinite", "nothing_trained", "impossible_loss"},
    "generalising well": {"overfitting", "overfitting_severe", "accuracy_drop"},
    "eval loss close to train loss": {"overfitting", "overfitting_severe"},
    "entropy agree": {"entropy_gap"},
    "no NaN/inf": {"loss_nonfinite"},
}


def _report(case: str) -> tuple[dict[str, Any], int]:
    path = REAL / case  # (a directory: its train.log, trainer_state.json or TensorBoard events)
    mtime = max(os.stat(p).st_mtime for p in path.rglob("*") if p.is_file())
    report, code = build([str(path)], Config(), clock=lambda: mtime)
    (run,) = report["runs"]
    return run, code


@pytest.mark.parametrize("case", CASES)
def test_a_report_that_exits_1_is_never_healthy(case: str) -> None:
    run, code = _report(case)
    a = run["assessment"]
    closed = [f for f in run["findings"] if f["severity"] == "critical" and not f["active"]]
    if code == 1:
        assert a["status"] != GOOD and not a["verdict"].startswith("Healthy"), a["verdict"]
    if closed and not any(f["active"] and f["severity"] == "critical" for f in run["findings"]):
        assert "recovered from" in a["verdict"].lower(), a["verdict"]
        for f in closed:
            assert f"at step {f['step']}" in a["verdict"]


@pytest.mark.parametrize("case", CASES)
def test_no_positive_contradicts_a_finding(case: str) -> None:
    run, _ = _report(case)
    codes = {f["code"] for f in run["findings"]}
    for line in run["assessment"]["positives"]:
        for phrase, bad in CONTRADICTS.items():
            if phrase in line:
                assert not codes & bad, f"{line!r} beside {sorted(codes & bad)}"
    if codes & {"overfitting", "overfitting_severe"}:
        for c in run["assessment"]["comparison"]:
            assert "generalising well" not in c["judgement"], c


def test_a_closed_gradient_spike_named_in_the_verdict() -> None:
    """The issue's fp16 run: grad_norm 29 at step 7 and 71.9 at step 22 against a median of 2-5
    (critical, closed later; 26.4 at step 4 came while the loss fell clearly: a warning)."""
    path = shared("luster-translation-fp16-gradspike71/trainer_state.json")
    report, code = build([str(path)], Config(), clock=lambda: os.stat(path).st_mtime)
    (run,) = report["runs"]
    spikes = [f for f in run["findings"] if f["code"] == "grad_explosion"]
    assert code == 1 and spikes and not any(f["active"] for f in spikes)
    v = run["assessment"]["verdict"]
    assert "recovered from gradient spikes of 29.02 at step 7 and 71.91 at step 22" in v.lower(), v


def test_memorising_run_gets_no_accuracy_praise() -> None:
    """tf5/overfit: train token accuracy 95% while eval accuracy is 4% (severe overfitting)."""
    run, _ = _report("tf5/overfit")
    assert not any("token accuracy" in p for p in run["assessment"]["positives"])


def _train(step: int, loss: float, grad: float) -> Record:
    return Record(Kind.TRAIN, step, {"loss": loss, "grad_norm": grad, "learning_rate": 1e-4}, None)


def test_recovered_spikes_listed_with_values_and_steps() -> None:
    recs = [_train(s, 3.0 * 0.995**s, 1.0 + 0.01 * (s % 5)) for s in range(1, 200)]
    # (the loss logged with each spike does not fall with it: an explosion, not a large step)
    recs[29] = _train(30, 3.0 * 0.995**27, 26.4)
    recs[99] = _train(100, 3.0 * 0.995**97, 71.9)
    data, diag = diagnose_all(recs)
    assert diag.worst() is not None and not diag.worst_active(), [f.message for f in diag.active()]
    a = assess(data, diag)
    assert a.status != GOOD
    assert a.verdict.startswith("Recovered from gradient spikes of 26.4 at step 30 and 71.9 at step 100"), a.verdict
    assert not any("grad_norm stable" in p for p in a.positives)


def test_no_accuracy_praise_beside_an_accuracy_drop() -> None:
    recs = []
    for s in range(1, 301):
        acc = 0.97 if s < 150 else (0.80 if s < 200 else 0.96)  # a drop that recovers to 96%
        m = {"loss": 1.0 * 0.998**s, "grad_norm": 1.0, "learning_rate": 1e-4, "mean_token_accuracy": acc}
        recs.append(Record(Kind.TRAIN, s, m, None))
    data, diag = diagnose_all(recs)
    assert any(f.code == "accuracy_drop" for f in diag.findings)
    a = assess(data, diag)
    assert next(r for r in a.metrics if r.metric == "mean_token_accuracy").status == GOOD
    assert not any("token accuracy" in p for p in a.positives), a.positives


@pytest.mark.parametrize("case", [c for c in CASES if c.endswith("/explode")])
def test_an_exploded_run_is_never_memorising(case: str) -> None:
    """LR 1.0: loss ~60, token accuracy 4%, entropy ~0: certain of the wrong tokens."""
    run, _ = _report(case)
    notes = [m["note"] for m in run["assessment"]["metrics"]] + run["assessment"]["cautions"]
    assert not any("memoris" in n for n in notes), notes
