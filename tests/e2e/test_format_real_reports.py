"""sfttop --report on the real logs of every line format: the format, and the exit status only
where the critical findings behind it are real."""

from __future__ import annotations

import pytest

from helpers import critical, report, shared


@pytest.mark.parametrize(
    ("rel", "fmt", "code", "criticals"),
    [
        ("megatron-slurm-nan-gradnorm-dead/1737333.out", "megatron", 1, {"loss_nonfinite"}),  # grad norm: nan
        ("nanogpt-termux-nan-at-iter425/train.log", "nanogpt", 1, {"loss_nonfinite"}),  # loss nan from 425
        ("nanogpt-shakespeare-overfit/output.log", "nanogpt", 1, {"overfitting_severe"}),  # val 4.9 vs train 0.12
        ("nanochat-d20-crash-disk-full-midtrain/speedrun.log", "nanochat", 1, {"run_crashed"}),  # disk full
        ("nanochat-oom-step0/speedrun.log", "nanochat", 1, {"run_crashed"}),  # CUDA out of memory
        ("nanochat-d24-4x3090-73h/speedrun.log", "nanochat", 0, set()),
        ("nanochat-d20-full-sft-val-flat/speedrun.log", "nanochat", 0, set()),
        ("llmc-gpt2-124m-10b/main.log", "llmc", 0, set()),
        ("torchtune-stdout-llama32-1b-lora-slurm/a100_g1b6-6076452.out", "torchtune", 0, set()),
    ],
)
def test_report_on_real_logs(rel: str, fmt: str, code: int, criticals: set[str]) -> None:
    r, got = report(shared(rel))
    run = r["runs"][0]
    assert run["format"] == fmt
    assert got == code
    assert critical(run) == criticals


@pytest.mark.parametrize(
    "rel",
    [
        "megatron-deepspeed-qwen7b-500it-validation/qwen7b_baseline_500.log",
        "megatron-llama3-1b-hang-344of500/stdout.log",
        "megatron-slurm-loss-collapse-to-zero/2256081.out",
        "megatron-slurm-gradnorm-instability-window/2765350.out",
    ],
)
def test_megatron_pretraining_logs_have_no_false_nan(rel: str) -> None:
    # These exit 1 on grad_explosion: grad norms of 20-110 in the first steps of pretraining from
    # scratch cross the fine-tuning threshold (and 21.5 at step 1602 of the instability window is
    # a real spike). Which of them should be critical is the diagnoser's call, not the parser's;
    # what the parser owes is that nothing reads as NaN that is not.
    r, _ = report(shared(rel))
    run = r["runs"][0]
    assert run["format"] == "megatron"
    assert "loss_nonfinite" not in critical(run)
