"""The seed's monitoring checklist, one row per item: everything about an item is said here.

Adding an item is one row (and its judge, in ``judges.py``); the engine, the report and the
TUI read the rest from the row.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sfttop.core import codes as C
from sfttop.core.i18n import N_

from . import judges as J
from .context import WindowData
from .windows import Verdict

Judge = Callable[[WindowData], Verdict]

# cadence id -> its label, in display order
CADENCES: dict[str, str] = {
    "100_steps": N_("every 100 steps"),
    "1000_steps": N_("every 1000 steps"),
    "epoch": N_("every epoch"),
}


@dataclass(frozen=True, slots=True)
class CheckItem:
    """One checklist item.

    ``judge`` reads the window's own data; None means the item is judged on the findings
    alone (the worst finding of ``warn | fail`` that overlaps the window, and its advice).
    Findings of ``warn`` codes that overlap a window make the item at least a warning there,
    of ``fail`` codes a failure; the window's own verdict stands when it is worse.
    """

    id: str
    cadence: str
    label: str  # the seed's question, for reports (English: show it as _(label))
    short: str  # a few words, for the TUI's narrow checklist panel (_(short) too)
    judge: Judge | None
    warn: frozenset[str] = frozenset()
    fail: frozenset[str] = frozenset()
    codes: frozenset[str] = field(init=False)  # warn | fail, asked for every window judged

    def __post_init__(self) -> None:
        object.__setattr__(self, "codes", self.warn | self.fail)


_LR_CODES = frozenset({C.LR_SCHEDULE, C.LR_TOO_SMALL, C.LR_TOO_LARGE})
_LOSS_SHAPE = frozenset({C.LOSS_OSCILLATION, C.LOSS_PLATEAU, C.TRAINING_UNSTABLE})

ITEMS: tuple[CheckItem, ...] = (
    # every 100 steps
    CheckItem(
        "loss_falling",
        "100_steps",
        N_("Is the loss falling normally?"),
        N_("loss falling"),
        J.loss_falling,
        warn=_LOSS_SHAPE,
        fail=frozenset({C.IMPOSSIBLE_LOSS, C.DIVERGENCE}),
    ),
    CheckItem(
        "grad_norm_in_range",
        "100_steps",
        N_("Is grad_norm in a reasonable range?"),
        N_("grad_norm in range"),
        J.grad_in_range,
        warn=frozenset({C.GRAD_NORM_HIGH, C.GRAD_VANISHING}),
        fail=frozenset({C.GRAD_EXPLOSION}),
    ),
    CheckItem(
        "lr_decaying",
        "100_steps",
        N_("Is the learning rate decaying as planned?"),
        N_("LR on schedule"),
        J.lr_decaying,
        warn=_LR_CODES,
    ),
    CheckItem(
        "no_nonfinite",
        "100_steps",
        N_("No NaN or inf values?"),
        N_("no NaN/inf"),
        J.no_nonfinite,
        fail=frozenset({C.LOSS_NONFINITE}),
    ),
    # every 1000 steps
    CheckItem("loss_gap", "1000_steps", N_("Is the train/eval loss gap reasonable?"), N_("train/eval gap ok"), J.loss_gap),
    CheckItem(
        "eval_acc_rising", "1000_steps", N_("Is eval accuracy rising steadily?"), N_("eval acc rising"), J.eval_acc_rising
    ),
    CheckItem(
        "no_overfitting",
        "1000_steps",
        N_("No signs of overfitting?"),
        N_("no overfitting"),
        J.no_overfitting,
        warn=frozenset({C.OVERFITTING}),
        fail=frozenset({C.OVERFITTING_SEVERE}),
    ),
    CheckItem(
        "entropy_stable",
        "1000_steps",
        N_("Is entropy stable?"),
        N_("entropy stable"),
        J.entropy_stable,
        warn=frozenset({C.ENTROPY_GAP}),
    ),
    # every epoch
    CheckItem(
        "trend_healthy",
        "epoch",
        N_("Is the overall training trend healthy?"),
        N_("trend healthy"),
        J.trend_healthy,
        warn=frozenset(
            {C.LOSS_OSCILLATION, C.LOSS_PLATEAU, C.TRAINING_UNSTABLE, C.OVERFITTING, C.ACCURACY_DROP, C.GRAD_NORM_HIGH}
        ),
        fail=frozenset(
            {C.LOSS_NONFINITE, C.DIVERGENCE, C.NOTHING_TRAINED, C.IMPOSSIBLE_LOSS, C.GRAD_EXPLOSION, C.OVERFITTING_SEVERE, C.RUN_CRASHED}
        ),
    ),
    CheckItem(
        "hparams_ok",
        "epoch",
        N_("Can the hyperparameters stay as they are?"),
        N_("hyperparams ok"),
        None,
        warn=frozenset(
            {C.GRAD_NORM_HIGH, C.GRAD_VANISHING, C.OVERFITTING, C.LOSS_OSCILLATION, C.LOSS_PLATEAU, C.ACCURACY_SLOW}
        )
        | {C.TRAINING_UNSTABLE}
        | _LR_CODES,
        fail=frozenset({C.LOSS_NONFINITE, C.DIVERGENCE, C.GRAD_EXPLOSION, C.OVERFITTING_SEVERE}),
    ),
    CheckItem("best_checkpoint", "epoch", N_("Which checkpoint is currently best?"), N_("best checkpoint"), J.best_checkpoint),
    CheckItem(
        "early_stop",
        "epoch",
        N_("Is early stopping needed?"),
        N_("no early stop due"),
        J.early_stop,
        warn=frozenset({C.OVERFITTING, C.ACCURACY_DROP}),
        fail=frozenset({C.OVERFITTING_SEVERE, C.LOSS_NONFINITE}),
    ),
)

ITEM_BY_ID: dict[str, CheckItem] = {i.id: i for i in ITEMS}
# each cadence's items in table order (the engine walks these once per window)
BY_CADENCE: dict[str, tuple[CheckItem, ...]] = {c: tuple(i for i in ITEMS if i.cadence == c) for c in CADENCES}
