"""One vocabulary for metric names, whatever framework wrote them.

Frameworks spell the same quantity differently (``lr`` in LLaMA-Factory >= 0.9.1,
``token_acc`` in ms-swift, ``eval/loss`` in TensorBoard-style exports). Everything downstream
(diagnoser, checklist, charts) only ever sees the canonical names below.
"""

from __future__ import annotations

import re

LOSS = "loss"
GRAD_NORM = "grad_norm"
LR = "learning_rate"
ENTROPY = "entropy"
TOKEN_ACC = "mean_token_accuracy"
NUM_TOKENS = "num_tokens"
EVAL_LOSS = "eval_loss"
EVAL_ENTROPY = "eval_entropy"
EVAL_TOKEN_ACC = "eval_mean_token_accuracy"
EVAL_RUNTIME = "eval_runtime"
EVAL_SAMPLES_PER_SECOND = "eval_samples_per_second"
STEP_TIME_MS = "step_time_ms"  # wall time of one optimiser step, in milliseconds
TFLOPS_PER_GPU = "tflops_per_gpu"

_ALIASES: dict[str, str] = {
    "lr": LR,
    "learning rate": LR,
    "token_acc": TOKEN_ACC,
    "acc": TOKEN_ACC,
    "accuracy": TOKEN_ACC,
    "grad norm": GRAD_NORM,
    "gradient_norm": GRAD_NORM,
    "lm loss": LOSS,
    "train_loss_step": LOSS,
    "val loss": EVAL_LOSS,
    "val_loss": EVAL_LOSS,
    "validation_loss": EVAL_LOSS,
    "num_input_tokens_seen": NUM_TOKENS,
    "total_tokens": NUM_TOKENS,
    "eval_token_acc": EVAL_TOKEN_ACC,
    "eval_acc": EVAL_TOKEN_ACC,
    "eval_accuracy": EVAL_TOKEN_ACC,
    "eval_num_input_tokens_seen": "eval_num_tokens",
    # Line formats (core/formats): Megatron-LM / Megatron-DeepSpeed
    "consumed samples": "consumed_samples",
    "consumed tokens": NUM_TOKENS,
    "elapsed time per iteration (ms)": STEP_TIME_MS,
    "iter time (ms)": STEP_TIME_MS,
    "throughput per gpu (tflop/s/gpu)": TFLOPS_PER_GPU,
    "tflops": TFLOPS_PER_GPU,
    "global batch size": "global_batch_size",
    "loss scale": "loss_scale",
    "number of skipped iterations": "skipped_iterations",
    "number of nan iterations": "nan_iterations",
    "params norm": "params_norm",
    "num zeros": "num_zeros",
    "actual seqlen": "seq_len",
    "samples per second": "samples_per_second",
    "samples/sec": "samples_per_second",
    "tokens per gpu per second (tgs)": "tokens_per_second_per_gpu",
    "lm loss ppl": "ppl",
    # nanochat
    "training loss": LOSS,
    "validation loss": EVAL_LOSS,
    "lrm": "lr_multiplier",
    "dt": STEP_TIME_MS,
    "tok/sec": "tokens_per_second",
    "bf16_mfu": "mfu",
    "core metric": "core",
}

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def canonical(name: str) -> str:
    """Map a raw metric key to sfttop's vocabulary.

    ``train/x`` and ``eval/x`` (TensorBoard tag style) become ``x`` and ``eval_x``; control
    characters are removed so no key read from a log can carry an escape sequence onward.
    """
    key = _CONTROL.sub("", name).strip()
    if len(key) > 80:
        key = key[:80]
    low = key.lower()
    if low.startswith("train/"):
        low = low[6:]
        key = key[6:]
    elif low.startswith("eval/"):
        low = "eval_" + low[5:]
        key = low
    alias = _ALIASES.get(low)
    if alias is not None:
        return alias
    if low.startswith("lr-") and "-" not in low[3:] and "/" not in low[3:]:
        return LR  # Lightning's LearningRateMonitor: lr-<Optimizer> (lr-<Optimizer>-momentum is not)
    if low.startswith("eval_"):
        rest = _ALIASES.get(low[5:])
        if rest is not None and not rest.startswith("eval_"):
            return "eval_" + rest
    return key


# Normal ranges from the seed FAQ (design.md, "Assessment"). None means unbounded on that side.
NORMAL_RANGES: dict[str, tuple[float | None, float | None]] = {
    LOSS: (0.01, 1.0),
    GRAD_NORM: (0.1, 10.0),
    ENTROPY: (0.5, 3.0),
    TOKEN_ACC: (0.7, 0.98),
    LR: (1e-7, 1e-3),
    EVAL_ENTROPY: (0.5, 3.0),
    EVAL_TOKEN_ACC: (0.7, 0.98),
}

# The ranges above that hold for a cross-entropy loss only (SFT): a DPO loss starts at ln 2, a
# GRPO loss hovers around 0, their "accuracy" is a reward accuracy.
CROSS_ENTROPY_RANGES = frozenset({LOSS, ENTROPY, TOKEN_ACC, EVAL_ENTROPY, EVAL_TOKEN_ACC})

# Short labels for narrow screens and report tables.
LABELS: dict[str, str] = {
    LOSS: "loss",
    GRAD_NORM: "grad_norm",
    LR: "lr",
    ENTROPY: "entropy",
    TOKEN_ACC: "token_acc",
    NUM_TOKENS: "tokens",
    EVAL_LOSS: "eval_loss",
    EVAL_ENTROPY: "eval_entropy",
    EVAL_TOKEN_ACC: "eval_token_acc",
}


def label(name: str) -> str:
    return LABELS.get(name, name)


# A logged LR is float32 noise on a float64 schedule: a relative change smaller than this is
# "constant", not warm-up or decay (the checklist, the assessment and the LR rule all read it).
LR_TOLERANCE = 1e-6
