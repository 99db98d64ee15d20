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

from sfttop.core.i18n import N_, _
from sfttop.core.objective import Objective
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
    IMPOSSIBLE_LOSS = "impossible_loss"
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
LOWER_LR = N_("lower the learning rate")
RAISE_LR = N_("raise the learning rate")
WARMUP = N_("use warmup")
_LOWER_LR = LOWER_LR
_CHECK_DATA = N_("check data preprocessing (empty or corrupt samples, fully masked labels)")
_CLIP = N_("add or tighten gradient clipping (max_grad_norm)")

# code -> (severity, short title, advice). Advice is the seed FAQ's adjustment strategies.
RULES: dict[str, tuple[Severity, str, tuple[str, ...]]] = {
    Code.LOSS_NONFINITE: (
        Severity.CRITICAL,
        N_("NaN/inf in training"),
        (_LOWER_LR, _CHECK_DATA, _CLIP, N_("in fp16, try bf16 or a higher initial loss scale")),
    ),
    Code.STEPS_SKIPPED: (
        Severity.INFO,
        N_("steps skipped by the loss scaler"),
        (
            N_("a few skipped steps are normal in fp16: the loss scaler lowers its scale after an overflow"),
            N_("if they keep coming: train in bf16, or look for the batches that overflow"),
        ),
    ),
    Code.DIVERGENCE: (
        Severity.CRITICAL,
        N_("loss diverged"),
        (
            N_("stop the run: it will not come back by itself"),
            N_("restart from the last checkpoint before the jump with a lower learning rate"),
            _CLIP,
            _CHECK_DATA,
        ),
    ),
    Code.NOTHING_TRAINED: (
        Severity.CRITICAL,
        N_("nothing is trained"),
        (
            N_("check the labels: are all of them -100 (masked)? (completion-only collator, response template)"),
            N_("check the chat template matches the tokenizer, and that the samples are not truncated away"),
        ),
    ),
    Code.IMPOSSIBLE_LOSS: (
        Severity.CRITICAL,
        N_("impossible loss"),
        (
            N_("a cross-entropy loss is never negative: check a custom compute_loss or loss function"),
            N_("check what rewrites the logged loss (a callback, loss scaling with gradient accumulation)"),
            N_("if this run is not cross-entropy training (a custom objective), ignore this finding"),
        ),
    ),
    Code.GRAD_EXPLOSION: (Severity.CRITICAL, N_("gradient explosion"), (_LOWER_LR, _CHECK_DATA, _CLIP)),
    Code.GRAD_NORM_HIGH: (
        Severity.WARNING,
        N_("grad_norm high"),
        (N_("keep watching grad_norm"), _LOWER_LR, _CLIP),
    ),
    Code.GRAD_VANISHING: (
        Severity.WARNING,
        N_("vanishing gradients"),
        (N_("check the model initialisation"), RAISE_LR, N_("check the data labels")),
    ),
    Code.OVERFITTING: (
        Severity.WARNING,
        N_("overfitting"),
        (
            N_("increase dropout (e.g. 0.1 -> 0.15)"),
            N_("increase weight decay (e.g. 0.01 -> 0.02)"),
            N_("use early stopping and keep the best checkpoint"),
        ),
    ),
    Code.OVERFITTING_SEVERE: (
        Severity.CRITICAL,
        N_("severe overfitting"),
        (
            N_("stop and take the best checkpoint (lowest eval_loss)"),
            N_("add training data"),
            N_("reduce model capacity (smaller model, lower LoRA rank)"),
            N_("increase dropout and weight decay"),
        ),
    ),
    Code.ACCURACY_DROP: (
        Severity.WARNING,
        N_("token accuracy dropping"),
        (N_("check the data and the learning rate"), N_("consider early stopping")),
    ),
    Code.LOSS_OSCILLATION: (
        Severity.WARNING,
        N_("loss unstable"),
        (_LOWER_LR, WARMUP, N_("check the data distribution (shuffling, mixed sources)")),
    ),
    Code.TRAINING_UNSTABLE: (
        Severity.WARNING,
        N_("training unstable"),
        (
            _LOWER_LR,
            WARMUP,
            _CLIP,
            N_("check the data distribution (shuffling, mixed sources)"),
        ),
    ),
    Code.LOSS_PLATEAU: (
        Severity.WARNING,
        N_("loss plateau"),
        (RAISE_LR, N_("check data quality"), N_("raise LoRA r or alpha")),
    ),
    Code.ACCURACY_SLOW: (
        Severity.INFO,
        N_("accuracy rising slowly"),
        (N_("train for more epochs"), N_("adjust the batch size"), N_("check label quality")),
    ),
    Code.LR_TOO_SMALL: (
        Severity.WARNING,
        N_("learning rate too small"),
        (RAISE_LR, N_("fix the LR schedule")),
    ),
    Code.LR_TOO_LARGE: (
        Severity.WARNING,
        N_("learning rate too large"),
        (_LOWER_LR, WARMUP),
    ),
    Code.LR_SCHEDULE: (
        Severity.WARNING,
        N_("learning-rate schedule"),
        (N_("check the scheduler type and warmup settings"), N_("check max_steps / num_train_epochs against the data size")),
    ),
    Code.ENTROPY_GAP: (
        Severity.WARNING,
        N_("train/eval entropy gap"),
        (N_("check the eval set matches the training distribution"),),
    ),
    Code.EVAL_SLOWDOWN: (
        Severity.WARNING,
        N_("evaluation slowing down"),
        (
            N_("look at memory use (a leak or fragmentation slows evaluation)"),
            N_("check the eval batch size"),
            N_("check data loading"),
        ),
    ),
    Code.RUN_CRASHED: (
        Severity.CRITICAL,
        N_("run crashed"),
        (
            N_("read the error line and the traceback above it"),
            N_("out of memory: lower the batch size or max length, or enable gradient checkpointing"),
            N_("resume from the last checkpoint once fixed"),
        ),
    ),
    Code.RUN_STALLED: (
        Severity.WARNING,
        N_("run stalled"),
        (
            N_("check the process is alive (ps, nvidia-smi)"),
            N_("a long eval, checkpoint save or data load can also pause logging"),
        ),
    ),
}
ADVICE = RULES

# Codes that judge the loss or the accuracy as a cross-entropy's: never opened for a run whose
# objective is not (a DPO loss is noisy per step around ln 2, a GRPO loss hovers around zero and
# goes negative; their "accuracy" is a reward accuracy). A loss of exactly 0 with no gradient is
# nothing trained for a preference loss too (it is never 0), but a routine value for RL.
_CROSS_ENTROPY_ONLY = frozenset(
    {Code.LOSS_OSCILLATION, Code.LOSS_PLATEAU, Code.ACCURACY_DROP, Code.ACCURACY_SLOW, Code.IMPOSSIBLE_LOSS}
)
MUTED: dict[Objective, frozenset[Code]] = {
    Objective.SFT: frozenset(),
    Objective.PREFERENCE: _CROSS_ENTROPY_ONLY,
    Objective.RL: _CROSS_ENTROPY_ONLY | {Code.NOTHING_TRAINED},
}

CODES: tuple[str, ...] = tuple(Code)


def title(code: str) -> str:
    return _(RULES[code][1]) if code in RULES else code


@dataclass
class Finding:
    """One episode of one pathology."""

    code: str
    severity: Severity
    step: int  # where the episode began
    metric: str  # "" for run events
    value: float | None  # the value that opened it; None for run events
    message: str  # one line with the numbers, in the chosen language
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
    """``text`` with the run's own numbers, for the LR placeholders ("" when it does not apply),
    in the reader's language."""
    peak = lr.peak if lr is not None else 0.0
    so_far = lr is not None and lr.rising
    if text == LOWER_LR and peak > 0:
        t = (
            _("lower the learning rate 3-10x: its peak so far {peak} -> {low}..{high}")
            if so_far
            else _("lower the learning rate 3-10x: its peak {peak} -> {low}..{high}")
        )
        return t.format(peak=_g(peak), low=_g(peak / 10), high=_g(peak / 3))
    if text == RAISE_LR and peak > 0:
        if peak < 1e-7:  # (far below any usual value: 2x would not help)
            return _(
                "raise the learning rate: it peaked at {peak}; usual peaks are 1e-5..5e-5 for a full "
                "fine-tune, 1e-4..3e-4 for LoRA"
            ).format(peak=fmt(peak))
        t = (
            _("raise the learning rate 1.5-2x: its peak so far {peak} -> {low}..{high}")
            if so_far
            else _("raise the learning rate 1.5-2x: its peak {peak} -> {low}..{high}")
        )
        return t.format(peak=_g(peak), low=_g(1.5 * peak), high=_g(2 * peak))
    if text == WARMUP:
        if lr is None or peak <= 0:
            return _("use a warmup (3-10% of the steps)")
        if lr.rising:
            return ""  # still in its warmup: the advice would be what it is doing
        if lr.rose:
            return _("use a longer warmup (the learning rate peaked at step {step})").format(step=lr.peak_step)
        return _("add a warmup (3-10% of the steps): the learning rate started at its peak {peak}").format(
            peak=fmt(peak)
        )
    return _(text)


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

    __slots__ = ("closed", "findings", "generation", "lr", "lr_dir", "muted", "open", "opened")

    def __init__(self) -> None:
        self.findings: list[Finding] = []
        self.muted: frozenset[Code] = frozenset()  # codes that do not apply to the run's objective
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
        if code in self.muted:
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

    def mute(self, codes: frozenset[Code], step: int) -> None:
        """Open no more episodes of ``codes``; those open close at ``step`` (the run turned out
        to be one they do not apply to)."""
        self.muted = codes
        for key, op in list(self.open.items()):
            if op.finding.code in codes:
                self.close(key, step)

    def close(self, key: str, step: int) -> None:
        op = self.open.pop(key, None)
        if op is not None:
            op.finding.active = False
            op.finding.end_step = step
            self.closed[key] = op.finding
            self.generation += 1
