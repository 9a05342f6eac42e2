"""Reward learners on cached embeddings: Bradley-Terry, classification, pointwise, ensembles.

Names load on first use (torch only when a head or model is touched).

Extension points (registries): `HEAD_KINDS` (`register_head_kind`), `HEAD_CLASSES`
(`register_head_class`) and `OBJECTIVES` (`register_objective`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rewardlab.lazy import lazy_exports

_EXPORTS = {
    "HEAD_CLASSES": "rewardlab.rewards.base",
    "STAT_KEYS": "rewardlab.rewards.base",
    "HeadBase": "rewardlab.rewards.base",
    "RewardHead": "rewardlab.rewards.base",
    "load_head": "rewardlab.rewards.base",
    "register_head_class": "rewardlab.rewards.base",
    "AGGREGATES": "rewardlab.rewards.ensemble",
    "EnsembleHead": "rewardlab.rewards.ensemble",
    "FEATURE_MODES": "rewardlab.rewards.features",
    "featurize_dataset": "rewardlab.rewards.features",
    "featurize_texts": "rewardlab.rewards.features",
    "HEAD_KINDS": "rewardlab.rewards.heads",
    "HeadKind": "rewardlab.rewards.heads",
    "make_head": "rewardlab.rewards.heads",
    "register_head_kind": "rewardlab.rewards.heads",
    "LightGBMHead": "rewardlab.rewards.lightgbm_head",
    "RewardModel": "rewardlab.rewards.model",
    "OBJECTIVES": "rewardlab.rewards.objectives",
    "Examples": "rewardlab.rewards.objectives",
    "Objective": "rewardlab.rewards.objectives",
    "register_objective": "rewardlab.rewards.objectives",
    "TorchHead": "rewardlab.rewards.torch_head",
    "TrainingSet": "rewardlab.rewards.training_set",
    "build_training_set": "rewardlab.rewards.training_set",
}

__all__ = ["AGGREGATES", "FEATURE_MODES", "HEAD_CLASSES", "HEAD_KINDS", "OBJECTIVES", "STAT_KEYS", "EnsembleHead",
           "Examples", "HeadBase", "HeadKind", "LightGBMHead", "Objective", "RewardHead", "RewardModel", "TorchHead",
           "TrainingSet", "build_training_set", "featurize_dataset", "featurize_texts", "load_head", "make_head",
           "register_head_class", "register_head_kind", "register_objective"]

if TYPE_CHECKING:
    from rewardlab.rewards.base import HEAD_CLASSES, STAT_KEYS, HeadBase, RewardHead, load_head, register_head_class
    from rewardlab.rewards.ensemble import AGGREGATES, EnsembleHead
    from rewardlab.rewards.features import FEATURE_MODES, featurize_dataset, featurize_texts
    from rewardlab.rewards.heads import HEAD_KINDS, HeadKind, make_head, register_head_kind
    from rewardlab.rewards.lightgbm_head import LightGBMHead
    from rewardlab.rewards.model import RewardModel
    from rewardlab.rewards.objectives import OBJECTIVES, Examples, Objective, register_objective
    from rewardlab.rewards.torch_head import TorchHead
    from rewardlab.rewards.training_set import TrainingSet, build_training_set


__getattr__ = lazy_exports(__name__, _EXPORTS)
