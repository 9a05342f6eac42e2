"""Using a reward: selection among candidates (best-of-n, soft, conservative), live best-of-n, prompt
optimization (Prompt-OIRL), SFT on demonstrations, and GRPO / on-policy DPO through TRL."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rewardlab.lazy import lazy_exports

_EXPORTS = {
    "STRATEGIES": "rewardlab.optimize.selection",
    "select_index": "rewardlab.optimize.selection",
    "soft_best_of_n_kl": "rewardlab.optimize.selection",
    "conservative_scores": "rewardlab.optimize.selection",
    "pick_from_sets": "rewardlab.optimize.picks",
    "live_best_of_n": "rewardlab.optimize.live_best_of_n",
    "PromptRewardModel": "rewardlab.optimize.prompts",
    "RewardFunction": "rewardlab.optimize.trl_rewards",
    "PolicyRunConfig": "rewardlab.optimize.policy_config",
    "run_grpo": "rewardlab.optimize.policy",
    "run_dpo": "rewardlab.optimize.policy",
}

__all__ = ["conservative_scores", "live_best_of_n", "pick_from_sets", "PolicyRunConfig", "PromptRewardModel",
           "RewardFunction", "run_dpo", "run_grpo", "select_index", "soft_best_of_n_kl", "STRATEGIES"]

if TYPE_CHECKING:
    from rewardlab.optimize.live_best_of_n import live_best_of_n
    from rewardlab.optimize.picks import pick_from_sets
    from rewardlab.optimize.policy import run_dpo, run_grpo
    from rewardlab.optimize.policy_config import PolicyRunConfig
    from rewardlab.optimize.prompts import PromptRewardModel
    from rewardlab.optimize.selection import STRATEGIES, conservative_scores, select_index, soft_best_of_n_kl
    from rewardlab.optimize.trl_rewards import RewardFunction


__getattr__ = lazy_exports(__name__, _EXPORTS)
