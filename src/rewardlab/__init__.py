"""rewardlab: learn reward models from human feedback on cached embeddings, evaluate them honestly, use them.

The main entry points are importable from here; they load on first use, so ``import rewardlab`` stays cheap
(torch and friends load only when a model is touched).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rewardlab.lazy import lazy_exports

__version__ = "0.1.0"

#: public name -> the module that defines it
_EXPORTS = {
    "RewardModel": "rewardlab.rewards.model",
    "make_encoder": "rewardlab.embed.base",
    "FeedbackDataset": "rewardlab.data.dataset",
    "load_named": "rewardlab.data.registry",
    "load_feedback": "rewardlab.data.load",
    "load_source": "rewardlab.data.source",
    "load_candidates": "rewardlab.data.candidates",
    "evaluate_model": "rewardlab.evaluate.holdout",
    "cross_validate": "rewardlab.evaluate.crossval",
    "LearnerSpec": "rewardlab.evaluate.crossval",
    "best_of_n": "rewardlab.evaluate.best_of_n",
    "RewardFunction": "rewardlab.optimize.trl_rewards",
    "PromptRewardModel": "rewardlab.optimize.prompts",
    "RewardlabError": "rewardlab.errors",
}

__all__ = ["__version__", "best_of_n", "cross_validate", "evaluate_model", "FeedbackDataset", "LearnerSpec",
           "load_candidates", "load_feedback", "load_named", "load_source", "make_encoder", "PromptRewardModel",
           "RewardFunction", "RewardlabError", "RewardModel"]

if TYPE_CHECKING:
    from rewardlab.data.candidates import load_candidates
    from rewardlab.data.dataset import FeedbackDataset
    from rewardlab.data.load import load_feedback
    from rewardlab.data.registry import load_named
    from rewardlab.data.source import load_source
    from rewardlab.embed.base import make_encoder
    from rewardlab.errors import RewardlabError
    from rewardlab.evaluate.best_of_n import best_of_n
    from rewardlab.evaluate.crossval import LearnerSpec, cross_validate
    from rewardlab.evaluate.holdout import evaluate_model
    from rewardlab.optimize.prompts import PromptRewardModel
    from rewardlab.optimize.trl_rewards import RewardFunction
    from rewardlab.rewards.model import RewardModel


__getattr__ = lazy_exports(__name__, _EXPORTS)
