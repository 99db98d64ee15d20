"""Finding codes, severities and advice, and the episodes that findings are.

A *finding* is one episode of one pathology: it opens on the record where its condition starts,
stays the same finding while the condition holds (brief remissions included), and closes once the
run has been healthy again for a while. ``Episodes`` is the one place that opens and closes them;
every call that opens one also collects it, so the diagnoser hands each caller exactly the
findings its record opened (a bell, a banner, an alert command once per episode).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from functools import total_ordering

from sfttop.core.textfmt import json_value


@total_ordering
class Severity(Enum):
    """How bad a finding is; ordered ``INFO < WARNING < CRITICAL``."""

    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _RANK[self.value]

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Severity):
            return NotImplemented
        return _RANK[self.value] < _RANK[other.value]


_RANK = {"info": 0, "warning": 1, "critical": 2}


class Code(str, Enum):
    """Every finding code. A ``str`` so that the checklist, the assessment, the TUI and the JSON
    report, which match and print codes as strings, read them unchanged (and a dict keyed by
    codes is looked up at C speed, which the per-record rules rely on)."""

    LOSS_NONFINITE = "loss_nonfinite"
    DIVERGENCE = "divergence"
    NOTHING_TRAINED = "nothing_trained"
    GRAD_EXPLOSION = "grad_explosion"
    GRAD_NORM_HIGH = "grad_norm_high"
    GRAD_VANISHING = "grad_vanishing"
    OVERFITTING = "overfitting"
    OVERFITTING_SEVERE = "overfitting_severe"
    ACCURACY_DROP = "accuracy_drop"
    LOSS_OSCILLATION = "loss_oscillation"
    LOSS_PLATEAU = "loss_plateau"
    ACCURACY_SLOW = "accuracy_slow"
    LR_TOO_SMALL = "lr_too_small"
    LR_TOO_LARGE = "lr_too_large"
    LR_SCHEDULE = "lr_schedule"
    ENTROPY_GAP = "entropy_gap"
    EVAL_SLOWDOWN = "eval_slowdown"
    RUN_CRASHED = "run_crashed"
    RUN_STALLED = "run_stalled"

    # Printed as the plain code: Python 3.12 formats a mixed-in Enum as "Code.NAME" otherwise.
    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)


_LOWER_LR = "lower the learning rate"
_CHECK_DATA = "check data preprocessing (empty or corrupt samples, fully masked labels)"
_CLIP = "add or tighten gradient clipping (max_grad_norm)"

# code -> (severity, short title, advice). Advice is the seed FAQ's adjustment strategies.
RULES: dict[str, tuple[Severity, str, tuple[str, ...]]] = {
    Code.LOSS_NONFINITE: (
        Severity.CRITICAL,
        "NaN/inf in training",
        (_LOWER_LR, _CHECK_DATA, _CLIP, "in fp16, try bf16 or a higher initial loss scale"),
    ),
    Code.DIVERGENCE: (
        Severity.CRITICAL,
        "loss diverged",
        (
            "stop the run: it will not come back by itself",
            "restart from the last checkpoint before the jump with a lower learning rate",
            _CLIP,
            _CHECK_DATA,
        ),
    ),
    Code.NOTHING_TRAINED: (
        Severity.CRITICAL,
        "nothing is trained",
        (
            "check the labels: are all of them -100 (masked)? (completion-only collator, response template)",
            "check the chat template matches the tokenizer, and that the samples are not truncated away",
        ),
    ),
    Code.GRAD_EXPLOSION: (Severity.CRITICAL, "gradient explosion", (_LOWER_LR, _CHECK_DATA, _CLIP)),
    Code.GRAD_NORM_HIGH: (
        Severity.WARNING,
        "grad_norm high",
        ("keep watching grad_norm", "the learning rate may need lowering", _CLIP),
    ),
    Code.GRAD_VANISHING: (
        Severity.WARNING,
        "vanishing gradients",
        ("check the model initialisation", "the learning rate may be too small", "check the data labels"),
    ),
    Code.OVERFITTING: (
        Severity.WARNING,
        "overfitting",
        (
            "increase dropout (e.g. 0.1 -> 0.15)",
            "increase weight decay (e.g. 0.01 -> 0.02)",
            "use early stopping and keep the best checkpoint",
        ),
    ),
    Code.OVERFITTING_SEVERE: (
        Severity.CRITICAL,
        "severe overfitting",
        (
            "stop and take the best checkpoint (lowest eval_loss)",
            "add training data",
            "reduce model capacity (smaller model, lower LoRA rank)",
            "increase dropout and weight decay",
        ),
    ),
    Code.ACCURACY_DROP: (
        Severity.WARNING,
        "token accuracy dropping",
        ("check the data and the learning rate", "consider early stopping"),
    ),
    Code.LOSS_OSCILLATION: (
        Severity.WARNING,
        "loss unstable",
        (_LOWER_LR, "use more warmup steps", "check the data distribution (shuffling, mixed sources)"),
    ),
    Code.LOSS_PLATEAU: (
        Severity.WARNING,
        "loss plateau",
        ("raise the learning rate (e.g. 3e-6 -> 5e-6)", "check data quality", "raise LoRA r or alpha"),
    ),
    Code.ACCURACY_SLOW: (
        Severity.INFO,
        "accuracy rising slowly",
        ("train for more epochs", "adjust the batch size", "check label quality"),
    ),
    Code.LR_TOO_SMALL: (
        Severity.WARNING,
        "learning rate too small",
        ("raise the learning rate (typical: 1e-5..5e-5 full fine-tune, 1e-4..3e-4 LoRA)", "fix the LR schedule"),
    ),
    Code.LR_TOO_LARGE: (
        Severity.WARNING,
        "learning rate too large",
        (_LOWER_LR, "use warmup"),
    ),
    Code.LR_SCHEDULE: (
        Severity.WARNING,
        "learning-rate schedule",
        ("check the scheduler type and warmup settings", "check max_steps / num_train_epochs against the data size"),
    ),
    Code.ENTROPY_GAP: (
        Severity.WARNING,
        "train/eval entropy gap",
        ("check the eval set matches the training distribution",),
    ),
    Code.EVAL_SLOWDOWN: (
        Severity.WARNING,
        "evaluation slowing down",
        (
            "look at memory use (a leak or fragmentation slows evaluation)",
            "check the eval batch size",
            "check data loading",
        ),
    ),
    Code.RUN_CRASHED: (
        Severity.CRITICAL,
        "run crashed",
        (
            "read the error line and the traceback above it",
            "out of memory: lower the batch size or max length, or enable gradient checkpointing",
            "resume from the last checkpoint once fixed",
        ),
    ),
    Code.RUN_STALLED: (
        Severity.WARNING,
        "run stalled",
        (
            "check the process is alive (ps, nvidia-smi)",
            "a long eval, checkpoint save or data load can also pause logging",
        ),
    ),
}
ADVICE = RULES

CODES: tuple[str, ...] = tuple(Code)


def title(code: str) -> str:
    return RULES[code][1] if code in RULES else code


@dataclass
class Finding:
    """One episode of one pathology."""

    code: str
    severity: Severity
    step: int  # where the episode began
    metric: str  # "" for run events
    value: float | None  # the value that opened it; None for run events
    message: str  # one plain-English line with the numbers
    advice: list[str] = field(default_factory=list)
    active: bool = True  # still holding at the last record
    end_step: int | None = None  # where it closed (None while active)

    @property
    def title(self) -> str:
        return title(self.code)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready. ``value`` is a number, ``null`` for run events, or the string
        ``"nan"``/``"inf"``/``"-inf"`` when non-finite (JSON has no NaN)."""
        return {
            "code": str(self.code),
            "severity": self.severity.value,
            "step": self.step,
            "metric": self.metric,
            "value": json_value(self.value),
            "message": self.message,
            "advice": list(self.advice),
            "active": self.active,
            "end_step": self.end_step,
        }


@dataclass
class _Open:
    finding: Finding
    cool: int = 0  # consecutive healthy observations since it last held


class Episodes:
    """The findings of one run and the episodes still open.

    An episode is keyed by its code, or by a key such as ``"accuracy_drop:train"`` when one code
    has independent episodes (train and eval accuracy). ``hot`` opens or holds it, ``cool`` counts
    a healthy observation and closes it after enough of them. What opened since the last
    ``take()`` is collected, so a caller gets back what its own call opened and nothing else.
    """

    __slots__ = ("findings", "generation", "open", "opened")

    def __init__(self) -> None:
        self.findings: list[Finding] = []
        self.open: dict[str, _Open] = {}  # key -> its open episode (rules test membership directly)
        self.opened: list[Finding] = []
        self.generation = 0  # bumped whenever a finding opens or closes

    def take(self) -> list[Finding]:
        """The findings opened since the last call."""
        out = self.opened
        self.opened = []
        return out

    def hot(
        self, code: Code, step: int, metric: str, value: float | None, message: str, key: str = ""
    ) -> Finding | None:
        """The condition behind ``key`` (default: ``code``) holds at ``step``; returns the
        finding when this opened it."""
        op = self.open.get(key or code)
        if op is not None:
            op.cool = 0
            return None
        sev, _title, advice = RULES[code]
        f = Finding(code, sev, step, metric, value, message, list(advice))
        self.open[key or code] = _Open(f)
        self.findings.append(f)
        self.opened.append(f)
        self.generation += 1
        return f

    def hold(self, key: str) -> None:
        """An open episode still holds (nothing to open)."""
        op = self.open.get(key)
        if op is not None:
            op.cool = 0

    def cool(self, key: str, step: int, needed: int) -> None:
        """The condition does not hold at ``step``; close after ``needed`` such observations."""
        op = self.open.get(key)
        if op is None:
            return
        op.cool += 1
        if op.cool >= needed:
            self.close(key, step)

    def cool_run(self, key: str, steps: Sequence[int], needed: int) -> None:
        """``cool(key, step, needed)`` for each of ``steps`` in turn."""
        op = self.open.get(key)
        if op is None:
            return
        left = needed - op.cool
        if left <= len(steps):
            self.close(key, steps[max(0, left - 1)])
        else:
            op.cool += len(steps)

    def close(self, key: str, step: int) -> None:
        op = self.open.pop(key, None)
        if op is not None:
            op.finding.active = False
            op.finding.end_step = step
            self.generation += 1
