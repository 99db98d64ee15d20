"""What a run optimises, told from the metric keys it logs: supervised fine-tuning, preference
optimisation or reinforcement learning.

The seed's normal ranges, "may be memorising", token-accuracy praise and the loss-shape rules
are about a cross-entropy loss. A DPO loss starts at ln 2 and is noisy per step; a GRPO or PPO
loss hovers around zero and is often negative; judged as cross-entropy, healthy runs of both
read as broken. The keys say which it is: TRL's preference trainers (DPO, IPO, ORPO, KTO, CPO,
SimPO, BCO, online DPO) log ``rewards/chosen``, ``logps/*``, ``logits/*``; its RL trainers
(GRPO, RLOO, PPO) log ``reward``, ``kl``, ``completions/*``, ``objective/*``, ``policy/*``. A
run whose keys say neither is SFT (pre-training and continued pre-training are cross-entropy
too). Stdlib only; no other core module is read here.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import Enum


class Objective(str, Enum):
    SFT = "sft"
    PREFERENCE = "preference"
    RL = "rl"

    def __str__(self) -> str:
        return self.value

    @property
    def cross_entropy(self) -> bool:
        """Its loss is a cross-entropy (never negative, the seed's ranges apply)."""
        return self is Objective.SFT


# Checked first: KTO and online DPO also log ``kl`` / ``objective/*``, but their loss is a
# preference loss. Exact names for ``rewards/*``: GRPO logs ``rewards/<reward function>/mean``.
_PREFERENCE_KEYS = frozenset(
    {
        "rewards/chosen",
        "rewards/rejected",
        "rewards/accuracies",
        "rewards/margins",
        "rewards/chosen_sum",
        "rewards/rejected_sum",
        "log_odds_ratio",
        "log_odds_chosen",
        "count/chosen",
        "count/rejected",
    }
)
_PREFERENCE_PREFIXES = ("logps/", "logits/")
_RL_KEYS = frozenset(
    {"reward", "reward_std", "kl", "frac_reward_zero_std", "completion_length", "loss/policy_avg"}
)
_RL_PREFIXES = ("completions/", "objective/", "policy/", "clip_ratio/", "ppo/", "env/reward")


def _base(name: str) -> str:
    return name[5:] if name.startswith("eval_") else name


def objective_of(name: str) -> Objective | None:
    """The objective one metric name implies (None: it says nothing)."""
    base = _base(name)
    if base in _PREFERENCE_KEYS or base.startswith(_PREFERENCE_PREFIXES):
        return Objective.PREFERENCE
    if base in _RL_KEYS or base.startswith(_RL_PREFIXES):
        return Objective.RL
    return None


def detect(names: Iterable[str]) -> Objective:
    """The objective of a run that logged the metrics ``names`` (canonical names)."""
    found = Objective.SFT
    for name in names:
        o = objective_of(name)
        if o is Objective.PREFERENCE:
            return o
        if o is Objective.RL:
            found = o
    return found
