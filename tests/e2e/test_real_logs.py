"""Logs written by the real transformers Trainer + TRL SFTTrainer (tests/fixtures/gen).

Ground truth is the generator's manifest, counted from the Trainer's own on_log callback, not
from the log text.
"""

from __future__ import annotations

import json

import pytest

from helpers import REAL, read_all
from sfttop.core.records import EventKind, Kind

CASES = [
    (ver, name, info)
    for ver in ("tf4", "tf5")
    for name, info in json.loads((REAL / ver / "manifest.json").read_text()).items()
]
IDS = [f"{v}-{n}" for v, n, _ in CASES]


@pytest.mark.parametrize(("ver", "name", "info"), CASES, ids=IDS)
@pytest.mark.parametrize("use_state", [True, False], ids=["with-state", "log-only"])
def test_counts_and_steps_match_the_trainer(ver: str, name: str, info: dict, use_state: bool) -> None:
    parser, data, _, events = read_all(str(REAL / ver / name / "train.log"), budget=4096, use_state=use_state)
    assert data.count(Kind.TRAIN) == info["distinct_train_steps"]
    assert data.count(Kind.EVAL) == info["eval_records"]
    assert list(data.index[Kind.TRAIN].steps) == info["train_steps_logged"]
    assert parser.stats.skipped == 0
    finished = any(e.kind is EventKind.FINISHED for e in events)
    assert finished == info["summary_printed"]
    if info["relogged_steps"]:
        assert any(e.kind is EventKind.RESUMED for e in events)


@pytest.mark.parametrize("ver", ["tf4", "tf5"])
def test_crash_names_the_error_line(ver: str) -> None:
    _, _, _, events = read_all(str(REAL / ver / "crash" / "train.log"))
    crashes = [e for e in events if e.kind is EventKind.CRASHED]
    assert len(crashes) == 1
    assert "CUDA out of memory" in crashes[0].message


@pytest.mark.parametrize("ver", ["tf4", "tf5"])
def test_nan_values_survive_both_spellings(ver: str) -> None:
    _, data, _, _ = read_all(str(REAL / ver / "nan_unfiltered" / "train.log"))
    loss = data.series["loss"].values
    gn = data.series["grad_norm"].values
    assert sum(1 for v in loss if v != v) > 0
    assert sum(1 for v in gn if v != v) > 0


@pytest.mark.parametrize("ver", ["tf4", "tf5"])
def test_trainer_metrics_are_in_the_vocabulary(ver: str) -> None:
    _, data, _, _ = read_all(str(REAL / ver / "healthy" / "train.log"))
    for name in ("loss", "grad_norm", "learning_rate", "entropy", "mean_token_accuracy", "num_tokens"):
        assert name in data.series, name
    for name in ("eval_loss", "eval_entropy", "eval_mean_token_accuracy"):
        assert name in data.series, name
    assert data.summary["train_runtime"] > 0


@pytest.mark.parametrize("ver", ["tf4", "tf5"])
@pytest.mark.parametrize("name", ["healthy", "healthy_multi", "overfit", "resumed"])
def test_eval_steps_match_the_trainer_state(ver: str, name: str) -> None:
    # eval_steps need not be a multiple of logging_steps (healthy: 15 vs 2): the eval's epoch
    # places it between two train logs.
    state = json.loads((REAL / ver / name / "trainer_state.json").read_text())
    want = sorted({e["step"] for e in state["log_history"] if "eval_loss" in e})
    _, data, _, _ = read_all(str(REAL / ver / name / "train.log"), use_state=False)
    assert list(data.index[Kind.EVAL].steps) == want
