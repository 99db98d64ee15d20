"""Every supported input format, through the whole report, from the documented shapes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import FORMATS


def report(*paths: Path) -> tuple[dict, int]:
    p = subprocess.run(
        [sys.executable, "-m", "sfttop", "--report", "--format", "json", *map(str, paths)],
        capture_output=True, text=True, timeout=120,
    )
    assert "Traceback" not in p.stderr, p.stderr
    return json.loads(p.stdout), p.returncode


@pytest.mark.parametrize(
    ("path", "fmt", "train", "eval_", "last_step"),
    [
        ("llamafactory/trainer_log.jsonl", "llamafactory-jsonl", 48, 4, 240),
        ("llamafactory/trainer_log_v090.jsonl", "llamafactory-jsonl", 10, 0, 100),
        ("ms-swift/logging.jsonl", "ms-swift-jsonl", 38, 3, 185),
        ("ms-swift/stdout_tf5.log", "ms-swift-jsonl", 20, 0, 20),
        ("trainer_state/trainer_state.json", "trainer-state", 10, 2, 100),
        ("generic/metrics.jsonl", "jsonl", 50, 5, 50),
    ],
)
def test_format_is_detected_and_counted(path: str, fmt: str, train: int, eval_: int, last_step: int) -> None:
    r, code = report(FORMATS / path)
    run = r["runs"][0]
    assert run["format"] == fmt
    assert run["records"] == {"train": train, "eval": eval_}
    assert run["last_step"] == last_step
    assert code in (0, 1)


def test_llamafactory_progress_and_lr_name() -> None:
    run = report(FORMATS / "llamafactory" / "trainer_log.jsonl")[0]["runs"][0]
    assert run["max_steps"] == 240
    assert "learning_rate" in run["latest"]["train"]
    assert run["latest"]["train"]["num_tokens"] == 240 * 4096


def test_ms_swift_summary_object_finishes_the_run() -> None:
    run = report(FORMATS / "ms-swift" / "logging.jsonl")[0]["runs"][0]
    assert run["status"] == "finished"
    assert run["max_steps"] == 189
    assert "mean_token_accuracy" in run["latest"]["train"]
    assert "eval_mean_token_accuracy" in run["latest"]["eval"]


def test_trainer_state_nan_is_a_critical_finding() -> None:
    r, code = report(FORMATS / "trainer_state" / "trainer_state.json")
    run = r["runs"][0]
    assert any(f["code"] == "loss_nonfinite" for f in run["findings"])
    assert code == 1
    assert run["status"] == "finished"


def test_generic_jsonl_tags_and_nonfinite() -> None:
    r, code = report(FORMATS / "generic" / "metrics.jsonl")
    run = r["runs"][0]
    assert set(run["latest"]["train"]) >= {"loss", "grad_norm", "learning_rate"}
    assert run["latest"]["eval"]["eval_loss"] > 0
    assert code == 1  # NaN loss at step 40


def test_directory_of_mixed_runs(tmp_path: Path) -> None:
    r, code = report(FORMATS)
    names = sorted(x["name"] for x in r["runs"])
    # (an event file with nothing but its header holds no record: named on stderr, exit 2)
    tb = ["tensorboard/" + d.name for d in (FORMATS / "tensorboard").iterdir() if d.is_dir() and "empty" not in d.name]
    assert code == 2
    assert names == sorted(
        ["generic", "llamafactory", "llmc", "megatron", "ms-swift", "nanochat", "nanogpt", "torchtune", "trainer_state", *tb,
         # tracker files (the MLflow run, at mlflow/mlruns/1/<run>, is deeper than a scan goes)
         "dvclive", "keras-csv", "lightning-csv", "wandb-csv", "run-20240214_195452-kt2awly2",
         "offline-run-20261204_203122-w88zmd4s"]
    )
