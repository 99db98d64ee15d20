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
from typing import Protocol

from sfttop.core.textfmt import fmt, json_value


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
    STEPS_SKIPPED = "steps_skipped"
    DIVERGENCE = "divergence"
    NOTHING_TRAINED = "nothing_trained"
    GRAD_EXPLOSION = "grad_explosion"
    GRAD_NORM_HIGH = "grad_norm_high"
    GRAD_VANISHING = "grad_vanishing"
    OVERFITTING = "overfitting"
    OVERFITTING_SEVERE = "overfitting_severe"
    ACCURACY_DROP = "accuracy_drop"
    LOSS_OSCILLATION = "loss_oscillation"
    TRAINING_UNSTABLE = "training_unstable"
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


# Placeholders in the advice below, written out from the run when a finding opens (``Episodes``):
# the learning rate's direction with numbers from the run's own peak, and warmup advice that knows
# whether the schedule has a warmup and is still in it.
LOWER_LR = "lower the learning rate"
RAISE_LR = "raise the learning rate"
WARMUP = "use warmup"
_LOWER_LR = LOWER_LR
_CHECK_DATA = "check data preprocessing (empty or corrupt samples, fully masked labels)"
_CLIP = "add or tighten gradient clipping (max_grad_norm)"

# code -> (severity, short title, advice). Advice is the seed FAQ's adjustment strategies.
RULES: dict[str, tuple[Severity, str, tuple[str, ...]]] = {
    Code.LOSS_NONFINITE: (
        Severity.CRITICAL,
        "NaN/inf in training",
        (_LOWER_LR, _CHECK_DATA, _CLIP, "in fp16, try bf16 or a higher initial loss scale"),
    ),
    Code.STEPS_SKIPPED: (
        Severity.INFO,
        "steps skipped by the loss scaler",
        (
            "a few skipped steps are normal in fp16: the loss scaler lowers its scale after an overflow",
            "if they keep coming: train in bf16, or look for the batches that overflow",
        ),
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
        ("keep watching grad_norm", _LOWER_LR, _CLIP),
    ),
    Code.GRAD_VANISHING: (
        Severity.WARNING,
        "vanishing gradients",
        ("check the model initialisation", RAISE_LR, "check the data labels"),
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
        (_LOWER_LR, WARMUP, "check the data distribution (shuffling, mixed sources)"),
    ),
    Code.TRAINING_UNSTABLE: (
        Severity.WARNING,
        "training unstable",
        (
            _LOWER_LR,
            WARMUP,
            _CLIP,
            "check the data distribution (shuffling, mixed sources)",
        ),
    ),
    Code.LOSS_PLATEAU: (
        Severity.WARNING,
        "loss plateau",
        (RAISE_LR, "check data quality", "raise LoRA r or alpha"),
    ),
    Code.ACCURACY_SLOW: (
        Severity.INFO,
        "accuracy rising slowly",
        ("train for more epochs", "adjust the batch size", "check label quality"),
    ),
    Code.LR_TOO_SMALL: (
        Severity.WARNING,
        "learning rate too small",
        (RAISE_LR, "fix the LR schedule"),
    ),
    Code.LR_TOO_LARGE: (
        Severity.WARNING,
        "learning rate too large",
        (_LOWER_LR, WARMUP),
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


class LrView(Protocol):
    """What advice reads of the run's learning rate (the learning-rate rule)."""

    @property
    def peak(self) -> float: ...

    @property
    def peak_step(self) -> int: ...

    @property
    def rose(self) -> bool: ...

    @property
    def rising(self) -> bool: ...


def _g(x: float) -> str:
    """A learning rate to suggest: two significant digits (1.5e-05, 0.033)."""
    return f"{x:.2g}"


def lr_advice(text: str, lr: LrView | None) -> str:
    """``text`` with the run's own numbers, for the LR placeholders ("" when it does not apply)."""
    peak = lr.peak if lr is not None else 0.0
    its = "its peak so far" if lr is not None and lr.rising else "its peak"
    if text == LOWER_LR and peak > 0:
        return f"lower the learning rate 3-10x: {its} {_g(peak)} -> {_g(peak / 10)}..{_g(peak / 3)}"
    if text == RAISE_LR and peak > 0:
        if peak < 1e-7:  # (far below any usual value: 2x would not help)
            return (
                f"raise the learning rate: it peaked at {fmt(peak)}; usual peaks are 1e-5..5e-5 for a full "
                "fine-tune, 1e-4..3e-4 for LoRA"
            )
        return f"raise the learning rate 1.5-2x: {its} {_g(peak)} -> {_g(1.5 * peak)}..{_g(2 * peak)}"
    if text == WARMUP:
        if lr is None or peak <= 0:
            return "use a warmup (3-10% of the steps)"
        if lr.rising:
            return ""  # still in its warmup: the advice would be what it is doing
        if lr.rose:
            return f"use a longer warmup (the learning rate peaked at step {lr.peak_step})"
        return f"add a warmup (3-10% of the steps): the learning rate started at its peak {fmt(peak)}"
    return text


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

    __slots__ = ("closed", "findings", "generation", "lr", "lr_dir", "open", "opened")

    def __init__(self) -> None:
        self.findings: list[Finding] = []
        self.open: dict[str, _Open] = {}  # key -> its open episode (rules test membership directly)
        self.opened: list[Finding] = []
        self.generation = 0  # bumped whenever a finding opens or closes
        self.closed: dict[str, Finding] = {}  # key -> its latest closed episode (a reopen may continue it)
        self.lr: LrView | None = None  # the run's learning rate, for advice with its numbers
        # The run's learning-rate advice, decided by the first finding that gives one: -1 lower,
        # +1 raise, 0 none yet. A later finding never advises the other way.
        self.lr_dir = 0

    def take(self) -> list[Finding]:
        """The findings opened since the last call."""
        out = self.opened
        self.opened = []
        return out

    def hot(
        self,
        code: Code,
        step: int,
        metric: str,
        value: float | None,
        message: str,
        key: str = "",
        *,
        merge: int = 0,
    ) -> Finding | None:
        """The condition behind ``key`` (default: ``code``) holds at ``step``; returns the
        finding when this opened it. ``merge``: an episode of the key that closed at most this
        many steps ago continues instead (no new finding, no new alert: a debounce)."""
        k = key or code
        op = self.open.get(k)
        if op is not None:
            op.cool = 0
            return None
        if merge > 0:
            last = self.closed.get(k)
            if last is not None and last.end_step is not None and step - last.end_step <= merge:
                last.active = True
                last.end_step = None
                self.open[k] = _Open(last)
                del self.closed[k]
                self.generation += 1
                return None
        sev, _title, advice = RULES[code]
        f = Finding(code, sev, step, metric, value, message, self._advice(advice))
        self.open[k] = _Open(f)
        self.findings.append(f)
        self.opened.append(f)
        self.generation += 1
        return f

    def _advice(self, advice: tuple[str, ...]) -> list[str]:
        """The code's advice with the run's numbers, and one learning-rate direction per run."""
        out = []
        for a in advice:
            if a in (LOWER_LR, RAISE_LR):
                d = -1 if a == LOWER_LR else 1
                if self.lr_dir == 0:
                    self.lr_dir = d
                elif self.lr_dir != d:
                    continue  # the run was told the other way: never both
            text = lr_advice(a, self.lr)
            if text:
                out.append(text)
        return out

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
            self.closed[key] = op.finding
            self.generation += 1
