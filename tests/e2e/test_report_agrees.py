"""Every real log's report agrees with itself (issue #14: "verdicts that contradict the findings",
"never two contradicting LR directions in one run"): swept over every log the scoreboard labels
(``bench/diagnosis_labels.json``, read as data: the fixtures' real runs and ``../shared/logs``).

- a report that exits 1 never has the verdict "Healthy" (nor the status "good");
- no "+" line stands beside a finding on the same metric;
- the findings' advice, the assessment's rows and cautions and the checklist's latest windows
  never point the learning rate both ways, and the assessment points it only the way a
  finding's advice does;
- the checklist's latest "No signs of overfitting?" never passes beside an open overfitting.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from helpers import FIXTURES, ROOT, SHARED
from sfttop.core.config import Config
from sfttop.core.report import build

LABELS = json.loads((ROOT / "bench" / "diagnosis_labels.json").read_text(encoding="utf-8"))["logs"]
ROOTS = {"fixtures": FIXTURES, "shared": SHARED}

LOWER = re.compile(r"lower the learning rate|learning rate may need lowering|too large|advise lowering", re.I)
RAISE = re.compile(r"raise the learning rate|too small|advise raising", re.I)
# the learning-rate codes' own titles ("learning rate too large") name the code, not a direction:
# a text is read for a direction only with them taken out
_TITLES = re.compile(r"learning rate too (large|small)", re.I)

# a positive line (by how it begins) -> the codes whose finding, open or closed, it contradicts
_LOSS_BAD = {"loss_plateau", "loss_nonfinite", "nothing_trained", "impossible_loss"}
_SWINGS = {"loss_oscillation", "training_unstable", "divergence"}
_OVER = {"overfitting", "overfitting_severe"}
POSITIVES: list[tuple[str, set[str], set[str]]] = [
    # (beginning, codes never beside it, codes never open beside it)
    ("train loss is low and stable", _LOSS_BAD | _SWINGS, set()),
    ("train loss is in the normal range and stable", _LOSS_BAD | _SWINGS, set()),
    ("train loss is still falling", _LOSS_BAD, _SWINGS),  # (falling after a swing that ended is no contradiction)
    ("token accuracy", {"accuracy_drop", "overfitting_severe"}, set()),
    ("eval accuracy", _OVER | {"accuracy_drop"}, set()),
    ("train and eval entropy agree", {"entropy_gap"}, set()),
    ("eval loss close to train loss", _OVER, set()),
    ("no NaN/inf values", {"loss_nonfinite"}, set()),
    ("grad_norm stable and in range", {"grad_explosion", "grad_norm_high", "grad_vanishing"}, set()),
    ("eval_loss still improving", set(), _OVER),
]


def _texts(run: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for f in run["findings"]:
        out += [*f.get("advice", []), f["message"]]
    a = run.get("assessment") or {}
    out += [m["note"] for m in a.get("metrics", [])]
    out += [*a.get("cautions", []), *a.get("positives", []), a.get("verdict", "")]
    for cadence in (run.get("checklist") or {}).values():
        latest = cadence.get("latest") if isinstance(cadence, dict) else None
        out += [i["detail"] for i in (latest or {}).get("items", [])]
    return out


def _problems(run: dict[str, Any], code: int) -> list[str]:
    probs: list[str] = []
    a = run.get("assessment") or {}
    if code == 1 and (a.get("status") == "good" or str(a.get("verdict", "")).startswith("Healthy")):
        probs.append(f"exit 1 with the verdict {a.get('verdict')!r}")
    alarms = [f for f in run["findings"] if f["severity"] != "info"]
    for pos in a.get("positives", []):
        for start, ever, open_ in POSITIVES:
            if pos.startswith(start):
                hit = [f["code"] for f in alarms if f["code"] in ever or (f["active"] and f["code"] in open_)]
                if hit:
                    probs.append(f"+ {pos} beside {hit}")
    texts = [_TITLES.sub("", t) for t in _texts(run)]
    lower = [t for t in texts if LOWER.search(t)]
    up = [t for t in texts if RAISE.search(t)]
    if lower and up:
        probs.append(f"two LR directions: {lower[0]!r} and {up[0]!r}")
    # ... and the assessment names none that no finding's advice gave (one place decides it)
    advice = [_TITLES.sub("", x) for f in run["findings"] for x in f.get("advice", [])]
    own = [_TITLES.sub("", x) for x in [*(m["note"] for m in a.get("metrics", [])), *a.get("cautions", [])]]
    for way in (LOWER, RAISE):
        if any(way.search(x) for x in own) and not any(way.search(x) for x in advice):
            probs.append(f"the assessment's own LR direction: {next(x for x in own if way.search(x))!r}")
    active_over = any(f["active"] and f["code"] in _OVER for f in alarms)
    for cadence in (run.get("checklist") or {}).values():
        latest = cadence.get("latest") if isinstance(cadence, dict) else None
        for item in (latest or {}).get("items", []):
            if active_over and item["id"] == "no_overfitting" and item["status"] == "pass":
                probs.append(f"'{item['label']}' passes beside an open overfitting")
    return probs


def _logs() -> list[Any]:
    return [pytest.param(e["root"], e["path"], id=f"{e['root']}:{e['path']}") for e in LABELS]


@pytest.mark.parametrize(("root", "rel"), _logs())
def test_the_report_agrees_with_itself(root: str, rel: str) -> None:
    path = ROOTS[root] / rel
    if not path.exists():
        pytest.skip(f"{path} not present")
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    mtime = max(os.stat(p).st_mtime for p in files)
    report, code = build([str(path)], Config(), clock=lambda: mtime + 86400.0)
    probs = [p for run in report["runs"] for p in _problems(run, code)]
    assert not probs, probs


def test_the_sweep_sees_what_it_looks_for() -> None:
    # the checks fire on a report that has each contradiction (a sweep that cannot fail is no test)
    run = {
        "findings": [
            {"code": "grad_explosion", "severity": "critical", "active": False, "message": "", "advice": ["lower the learning rate 3-10x"]},
            {"code": "loss_plateau", "severity": "warning", "active": True, "message": "", "advice": ["raise the learning rate 1.5-2x"]},
            {"code": "overfitting", "severity": "warning", "active": True, "message": "", "advice": []},
        ],
        "assessment": {
            "status": "good",
            "verdict": "Healthy: nothing to act on.",
            "positives": ["grad_norm stable and in range", "train loss is still falling", "eval_loss still improving"],
            "metrics": [{"metric": "learning_rate", "note": "above 0.001: probably too large"}],
            "cautions": [],
        },
        "checklist": {"1000_steps": {"latest": {"items": [{"id": "no_overfitting", "label": "No signs of overfitting?", "status": "pass", "detail": ""}]}}},
    }
    probs = _problems(run, 1)
    assert len(probs) == 6, probs
    run["findings"] = []  # (the row's "too large" alone: a direction no finding gave)
    assert [p for p in _problems(run, 0) if "own LR direction" in p], _problems(run, 0)
    assert _problems({"findings": [], "assessment": {"status": "good", "verdict": "Healthy"}}, 0) == []


def test_labels_cover_the_real_fixtures() -> None:
    # (the sweep runs over the labels: every real run of the fixtures is among them)
    labelled = {Path(e["path"]).parts[:3] for e in LABELS if e["root"] == "fixtures"}
    real = {p.relative_to(FIXTURES).parts[:3] for p in (FIXTURES / "real").glob("*/*") if p.is_dir()}
    assert real <= labelled, sorted(real - labelled)
