"""The finding codes the checklist and the assessment speak of: the diagnoser's ``Code`` enum.

Names for the members, so the checklist's and the assessment's tables read as before; a
misspelt name fails at import, never silently matches nothing. ``Code`` is a ``str`` Enum, so
string comparisons and dict lookups by plain code keep working.
"""

from __future__ import annotations

from .diagnose.episodes import Code

LOSS_NONFINITE = Code.LOSS_NONFINITE
NOTHING_TRAINED = Code.NOTHING_TRAINED
IMPOSSIBLE_LOSS = Code.IMPOSSIBLE_LOSS
LOSS_OSCILLATION = Code.LOSS_OSCILLATION
TRAINING_UNSTABLE = Code.TRAINING_UNSTABLE
DIVERGENCE = Code.DIVERGENCE
LOSS_PLATEAU = Code.LOSS_PLATEAU
GRAD_EXPLOSION = Code.GRAD_EXPLOSION
GRAD_NORM_HIGH = Code.GRAD_NORM_HIGH
GRAD_VANISHING = Code.GRAD_VANISHING
LR_SCHEDULE = Code.LR_SCHEDULE
LR_TOO_SMALL = Code.LR_TOO_SMALL
LR_TOO_LARGE = Code.LR_TOO_LARGE
OVERFITTING = Code.OVERFITTING
OVERFITTING_SEVERE = Code.OVERFITTING_SEVERE
ACCURACY_DROP = Code.ACCURACY_DROP
ACCURACY_SLOW = Code.ACCURACY_SLOW
ENTROPY_GAP = Code.ENTROPY_GAP
RUN_CRASHED = Code.RUN_CRASHED
