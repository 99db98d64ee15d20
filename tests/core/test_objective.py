"""The objective a run optimises (SFT, preference, RL), told from its keys, and what changes with
it (issue #14, item 7): no cross-entropy judgement of a DPO or GRPO loss, no token-accuracy
praise for a reward accuracy; NaN, gradient and crash rules stay on."""

from __future__ import annotations

import math
import os
import random
from array import array
from pathlib import Path
from typing import Any

import pytest

from helpers import FIXTURES, diagnose_all, read_all
from sfttop.core.assess import CRITICAL, NA, assess
from sfttop.core.config import Config, Thresholds
from sfttop.core.diagnose import Diagnoser, Severity
from sfttop.core.diagnose.rules.impossible import NEGATIVE
from sfttop.core.objective import Objective, detect
from sfttop.core.records import Block, Kind, Record
from sfttop.core.report import build, render_text

FIX = FIXTURES / "objective"
DPO = FIX / "iiicellled-qwen-coder-dpo"
LF_DPO = FIX / "hykun-llamafactory-dpo-days-eta-abandoned"
GRPO = FIX / "srinath-trl-grpo-entropy-zero-gradnorm"
GRPO_TF5 = FIX / "rusheel-tf5-unsloth-grpo-stringified"

# The keys TRL's trainers log (a train record, canonical names; from the trainers' own
# ``_metrics`` / ``store_metrics`` and docs/source/logging.md)
TRL_KEYS: dict[str, tuple[set[str], Objective]] = {
    "sft": ({"loss", "grad_norm", "learning_rate", "entropy", "num_tokens", "mean_token_accuracy"}, Objective.SFT),
    "dpo": (
        {"loss", "grad_norm", "learning_rate", "rewards/chosen", "rewards/rejected", "rewards/accuracies",
         "rewards/margins", "logps/chosen", "logps/rejected", "logits/chosen", "logits/rejected"},
        Objective.PREFERENCE,
    ),
    "orpo": (
        {"loss", "rewards/chosen", "rewards/margins", "logps/chosen", "nll_loss", "log_odds_ratio",
         "log_odds_chosen"},
        Objective.PREFERENCE,
    ),
    "kto": ({"loss", "kl", "rewards/chosen_sum", "logps/chosen_sum", "count/chosen"}, Objective.PREFERENCE),
    "online_dpo": (
        {"loss", "objective/kl", "objective/entropy", "objective/scores", "rewards/chosen", "rewards/margins",
         "logps/chosen", "beta"},
        Objective.PREFERENCE,
    ),
    "grpo": (
        {"loss", "grad_norm", "learning_rate", "reward", "reward_std", "kl", "frac_reward_zero_std",
         "completions/mean_length", "clip_ratio/region_mean", "rewards/accuracy_reward/mean"},
        Objective.RL,
    ),
    # a reward function named after DPO's key is still GRPO's: rewards/<fn>/mean
    "grpo_named_chosen": ({"loss", "reward", "rewards/chosen/mean", "rewards/chosen/std"}, Objective.RL),
    "grpo_old": ({"loss", "reward", "reward_std", "kl", "completion_length", "rewards/format_reward"}, Objective.RL),
    "ppo": (
        {"learning_rate", "episode", "objective/kl", "objective/rlhf_reward", "policy/approxkl_avg",
         "loss/policy_avg", "loss/value_avg", "val/ratio"},
        Objective.RL,
    ),
    "eval_only_marker": ({"loss", "eval_loss", "eval_rewards/accuracies"}, Objective.PREFERENCE),
}  # fmt: skip


@pytest.mark.parametrize("trainer", sorted(TRL_KEYS))
def test_detect_from_trl_key_sets(trainer: str) -> None:
    keys, want = TRL_KEYS[trainer]
    assert detect(keys) is want
    assert detect(sorted(keys, reverse=True)) is want  # (whatever order the keys come in)


def _report(path: Path) -> tuple[dict[str, Any], int]:
    mtime = max(os.stat(p).st_mtime for p in path.rglob("*") if p.is_file())
    report, code = build([str(path)], Config(), clock=lambda: mtime)
    (run,) = report["runs"]
    return run, code


@pytest.mark.parametrize(
    ("path", "objective"),
    [(DPO, "preference"), (LF_DPO, "preference"), (GRPO, "rl"), (GRPO_TF5, "rl")],
    ids=lambda p: p.name if isinstance(p, Path) else p,
)
def test_real_runs_are_told_and_judged_by_their_objective(path: Path, objective: str) -> None:
    run, _code = _report(path)
    assert run["objective"] == objective
    a = run["assessment"]
    codes = {f["code"] for f in run["findings"]}
    # per-step preference noise and a GRPO loss below zero are no loss pathology
    assert not codes & {"loss_oscillation", "loss_plateau", "impossible_loss", "accuracy_drop", "accuracy_slow"}
    loss = next(r for r in a["metrics"] if r["metric"] == "loss")
    assert loss["status"] == NA and "memoris" not in loss["note"]
    assert not any("memoris" in r["note"] for r in a["metrics"])
    assert not any("token accuracy" in p for p in a["positives"])
    assert not any("normal range" in p for p in a["positives"])
    if objective == "rl":
        assert not any(p.startswith("train loss") for p in a["positives"])


def test_llamafactory_accuracy_is_the_reward_accuracy() -> None:
    """LLaMA-Factory writes TRL's rewards/accuracies as ``accuracy``: 1.0 at the first step of a
    DPO run is a reward accuracy, never "token accuracy 100%: excellent"."""
    _parser, data, _recs, _evs = read_all(str(LF_DPO / "trainer_log.jsonl"))
    assert data.get("mean_token_accuracy") is None
    s = data.get("rewards/accuracies")
    assert s is not None and s.values[0] == 1.0
    run, _ = _report(LF_DPO)
    assert not any(r["metric"] == "mean_token_accuracy" for r in run["assessment"]["metrics"])


def test_the_text_report_names_the_objective() -> None:
    mtime = os.stat(GRPO_TF5 / "output.log").st_mtime
    report, _ = build([str(GRPO_TF5)], Config(), clock=lambda: mtime)
    assert " · objective: rl · " in render_text(report)


# ------------------------------------------------------------------------------------------------
# the same losses judged per objective


def _train(step: int, loss: float, grad: float = 0.5, extra: dict[str, float] | None = None) -> Record:
    m = {"loss": loss, "grad_norm": grad, "learning_rate": 1e-5, **(extra or {})}
    return Record(Kind.TRAIN, step, m, None)


_GRPO = {"reward": 0.5, "kl": 1e-3, "completions/mean_length": 120.0}
_DPO = {"rewards/chosen": 0.1, "rewards/rejected": -0.1, "logps/chosen": -40.0}


def _grpo_losses(n: int = 200) -> list[float]:
    r = random.Random(3)
    return [r.gauss(0.0, 0.05) for _ in range(n)]  # around zero, half of them below it


def test_a_grpo_loss_below_zero_is_nothing_but_rl() -> None:
    data, diag = diagnose_all(_train(i + 1, x, extra=_GRPO) for i, x in enumerate(_grpo_losses()))
    assert diag.objective is Objective.RL
    assert [f.code for f in diag.findings] == []
    a = assess(data, diag)
    assert a.status == "good" and a.verdict.startswith("Healthy")


def test_the_same_losses_as_sft_are_impossible_at_the_first_negative_record() -> None:
    losses = _grpo_losses()
    first = next(i for i, x in enumerate(losses) if x < NEGATIVE) + 1
    data, diag = diagnose_all(_train(i + 1, x) for i, x in enumerate(losses))
    assert diag.objective is Objective.SFT
    imp = [f for f in diag.findings if f.code == "impossible_loss"]
    assert imp and imp[0].step == first and imp[0].severity is Severity.CRITICAL
    assert "negative" in imp[0].message
    a = assess(data, diag)
    assert a.status == CRITICAL and "impossible loss" in a.verdict


def test_a_negative_sft_loss_reads_impossible_not_memorising() -> None:
    recs = [_train(i + 1, 2.0 - 0.01 * i) for i in range(50)] + [_train(51 + i, -0.7) for i in range(5)]
    data, diag = diagnose_all(recs)
    (f,) = [f for f in diag.findings if f.code == "impossible_loss"]
    assert f.step == 51 and f.active
    row = next(r for r in assess(data, diag).metrics if r.metric == "loss")
    assert row.status == CRITICAL and "impossible" in row.note and "memoris" not in row.note


def test_a_memorised_loss_a_hair_below_zero_is_not_impossible() -> None:
    """Unsloth's SFT (5hiri in ../shared/logs) logs -0.0001..-0.0003 once it has learnt its data
    by heart: low-precision rounding of a loss near 0, not a broken loss."""
    recs = [_train(i + 1, 2.0 * 0.9**i) for i in range(40)]
    recs += [_train(41 + i, (-0.0003, 0.0001, -0.0001, 0.0)[i % 4]) for i in range(20)]
    data, diag = diagnose_all(recs)
    assert not [f for f in diag.findings if f.code == "impossible_loss"]
    row = next(r for r in assess(data, diag).metrics if r.metric == "loss")
    assert "memorising" in row.note


def test_a_recovered_negative_loss_closes_and_is_named_in_the_verdict() -> None:
    recs = [_train(i + 1, 2.0 - 0.01 * i) for i in range(40)]
    recs += [_train(41, -0.5)] + [_train(42 + i, 1.6 - 0.005 * i) for i in range(60)]
    data, diag = diagnose_all(recs)
    (f,) = [f for f in diag.findings if f.code == "impossible_loss"]
    assert not f.active
    a = assess(data, diag)
    assert a.status != "good" and "at step 41" in a.verdict


def _dpo_losses(n: int = 300) -> list[float]:
    # a DPO loss per step: ln 2 at the start, falling, and very noisy (a few pairs a batch)
    r = random.Random(7)
    return [max(0.02, (0.69 - 0.3 * (1 - math.exp(-i / 80))) * math.exp(r.gauss(0, 0.5))) for i in range(n)]


def test_per_step_preference_noise_is_no_oscillation() -> None:
    losses = _dpo_losses()
    _data, sft = diagnose_all(_train(i + 1, x) for i, x in enumerate(losses))
    assert not sft.findings  # (SFT rules judge jumps against the loss's own noise: no oscillation)
    # ...and without that, the objective alone keeps the preference run quiet
    loose = Thresholds(loss_noise_z=1e-9)
    bare, pref = Diagnoser(loose), Diagnoser(loose)
    for i, x in enumerate(losses):
        bare.observe(_train(i + 1, x))
        pref.observe(_train(i + 1, x, extra=_DPO))
    assert any(f.code == "loss_oscillation" for f in bare.findings)
    assert pref.objective is Objective.PREFERENCE and not pref.findings
    data, dpo = diagnose_all(_train(i + 1, x, extra=_DPO) for i, x in enumerate(losses))
    assert dpo.objective is Objective.PREFERENCE
    assert not [f.code for f in dpo.findings]
    row = next(r for r in assess(data, dpo).metrics if r.metric == "loss")
    assert row.status == NA and "preference" in row.note


def test_blocks_tell_the_objective_too() -> None:
    losses = _dpo_losses()
    names = ("loss", "grad_norm", "learning_rate", *_DPO)
    cols = (array("d", losses), array("d", [0.5] * len(losses)), array("d", [1e-5] * len(losses)))
    cols += tuple(array("d", [v] * len(losses)) for v in _DPO.values())
    steps = array("q", range(1, len(losses) + 1))
    block = Block(names, steps, cols, None, array("q", range(len(losses))))
    d = Diagnoser()
    d.observe_block(block)
    assert d.objective is Objective.PREFERENCE and not d.findings


def test_nan_and_gradient_rules_stay_on_for_rl() -> None:
    recs = [_train(i + 1, x, extra=_GRPO) for i, x in enumerate(_grpo_losses(60))]
    recs.append(_train(61, 0.01, math.nan, _GRPO))
    recs += [_train(62 + i, 0.01, 80.0, _GRPO) for i in range(3)]
    _data, diag = diagnose_all(recs)
    codes = {f.code for f in diag.findings}
    assert {"loss_nonfinite", "grad_explosion"} <= codes


def test_rl_zero_losses_are_neither_nothing_trained_nor_a_masked_nan() -> None:
    # GRPO's loss is exactly 0 at on-policy steps (and printed '0' by transformers 5)
    recs = [_train(i + 1, 0.0, 0.0, _GRPO) for i in range(5)]
    recs += [_train(6 + i, 0.02 if i % 2 else 0.0, 0.3, {"reward": 0.5, "kl": 1e-3}) for i in range(40)]
    _data, diag = diagnose_all(recs)
    assert diag.objective is Objective.RL and not diag.findings


def test_an_objective_learnt_late_closes_what_it_mutes() -> None:
    """The first records carried no objective's keys (a tracker that logs them later): the
    SFT-only episodes opened before close when the keys come."""
    d = Diagnoser()
    for i in range(10):
        d.observe(_train(i + 1, -0.5))
    (f,) = d.findings
    assert f.code == "impossible_loss" and f.active
    d.observe(_train(11, -0.5, extra=_GRPO))
    assert d.objective is Objective.RL and not f.active and f.end_step == 11
    d.observe(_train(12, -0.5, extra=_GRPO))
    assert len(d.findings) == 1


def test_the_title_bar_names_a_non_sft_objective() -> None:
    from sfttop.core.run import Run
    from sfttop.tui.views import objective_text
    from sfttop.tui.widgets.title_bar import TitleInfo, title_text

    texts = {}
    for path in (DPO / "trainer_state.json", GRPO / "trainer_state.json"):
        run = Run(path.parent.name, str(path), Config())
        while not run.loaded:
            run.poll(1 << 20, os.stat(path).st_mtime)
        texts[path.parent] = objective_text(run)
    assert texts == {DPO: "objective: preference", GRPO: "objective: RL"}
    info = TitleInfo("sfttop", "dpo", 0, 0, 1, "step 160/160", "finished", "", "", objective="objective: preference")
    assert "finished │ step 160/160 │ objective: preference" in title_text(info, 120, {}).plain


def _checklist_items(run: dict[str, Any]) -> dict[str, tuple[str, str]]:
    out: dict[str, tuple[str, str]] = {}
    for cad in run["checklist"].values():
        for it in cad["latest"]["items"] if cad["latest"] else ():
            out[it["id"]] = (it["status"], it["detail"])
    return out


def test_the_checklist_asks_no_loss_trend_of_an_rl_run() -> None:
    items = _checklist_items(_report(GRPO)[0])
    assert items["loss_falling"] == ("pending", "not judged: an RL policy loss need not fall")
    assert items["trend_healthy"][0] == "pending"


def test_preference_noise_within_an_epoch_is_no_unhealthy_trend() -> None:
    """hykun (LLaMA-Factory DPO): the loss median wanders 0.6533 -> 0.6632 within an epoch."""
    status, detail = _checklist_items(_report(LF_DPO)[0])["trend_healthy"]
    assert status == "pass", detail


def test_the_cards_show_no_cross_entropy_range_for_an_rl_run() -> None:
    from sfttop.core.run import Run
    from sfttop.tui.views import cards

    path = GRPO / "trainer_state.json"
    run = Run("grpo", str(path), Config())
    while not run.loaded:
        run.poll(1 << 20, os.stat(path).st_mtime)
    by = {c.metric: c for c in cards(run, Config().thresholds)}
    assert by["loss"].value is not None and by["loss"].value < 0
    assert (by["loss"].low, by["loss"].high) == (None, None)
    assert by["grad_norm"].high is not None  # (gradient ranges stay)
