"""The finding codes the checklist and the assessment speak of, spelled once.

The diagnoser names its findings with these strings (``diagnose.CODES``); a test holds the two
together, so a misspelling here fails rather than silently matching nothing. When diagnose
exports its ``Code`` enum (a ``str`` Enum, so comparisons keep working), this module is the one
place to switch.
"""

from __future__ import annotations

LOSS_NONFINITE = "loss_nonfinite"
LOSS_OSCILLATION = "loss_oscillation"
LOSS_PLATEAU = "loss_plateau"
GRAD_EXPLOSION = "grad_explosion"
GRAD_NORM_HIGH = "grad_norm_high"
GRAD_VANISHING = "grad_vanishing"
LR_SCHEDULE = "lr_schedule"
LR_TOO_SMALL = "lr_too_small"
LR_TOO_LARGE = "lr_too_large"
OVERFITTING = "overfitting"
OVERFITTING_SEVERE = "overfitting_severe"
ACCURACY_DROP = "accuracy_drop"
ACCURACY_SLOW = "accuracy_slow"
ENTROPY_GAP = "entropy_gap"
RUN_CRASHED = "run_crashed"
