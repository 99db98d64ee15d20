"""The rule families, one module each, and the registry the diagnoser builds them from.

Adding a train rule: one module with a ``TrainRule`` subclass (its codes in ``episodes.Code``),
one line in ``train_rules`` below, and its own tests; ``tests/core/test_rules.py`` holds its bulk path
against its record path without being told about it.
"""

from __future__ import annotations

from .accuracy import Accuracy
from .base import Cols, Context, Point, TrainRule
from .eval import EvalRules
from .grad import Gradients, Vanishing
from .impossible import ImpossibleLoss
from .loss import LossRule
from .lr import LearningRate
from .nonfinite import NonFinite
from .run_state import RunState
from .trend import AccuracySlow, Plateau
from .unstable import Unstable
from .zero import NothingTrained

__all__ = ["Cols", "Context", "EvalRules", "Point", "RunState", "TrainRule", "train_rules"]


def train_rules(ctx: Context) -> tuple[TrainRule, ...]:
    """Every train rule, in the order each record visits them (the order its findings are listed
    in). ``NonFinite`` comes first: a broken record goes no further. A rule that reads another
    gets it here, through a narrow protocol (rules never import each other)."""
    loss = LossRule(ctx)
    lr = LearningRate(ctx)
    plateau = Plateau(ctx, loss, lr)  # (before the LR: it judges against the LR before this record's)
    return (
        NonFinite(ctx),
        NothingTrained(ctx),
        ImpossibleLoss(ctx),
        Gradients(ctx),
        loss,
        plateau,
        Unstable(ctx),  # (before the LR: lr_too_large reads whether it is open)
        lr,
        Accuracy(ctx),
        AccuracySlow(ctx, lr),
        Vanishing(ctx, plateau),  # (last: it reads this record's plateau check)
    )
