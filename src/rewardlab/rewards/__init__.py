"""Reward learners on cached embeddings: Bradley-Terry, classification, pointwise, ensembles.

Extension points (registries): `HEAD_KINDS` (`register_head_kind`), `HEAD_CLASSES`
(`register_head_class`) and `OBJECTIVES` (`register_objective`).
"""

from rewardlab.rewards.base import HEAD_CLASSES, STAT_KEYS, HeadBase, RewardHead, load_head, register_head_class
from rewardlab.rewards.ensemble import AGGREGATES, EnsembleHead
from rewardlab.rewards.features import FEATURE_MODES, featurize_dataset, featurize_texts
from rewardlab.rewards.heads import HEAD_KINDS, HeadKind, make_head, register_head_kind
from rewardlab.rewards.lightgbm_head import LightGBMHead
from rewardlab.rewards.model import RewardModel
from rewardlab.rewards.objectives import OBJECTIVES, Examples, Objective, register_objective
from rewardlab.rewards.torch_head import TorchHead
from rewardlab.rewards.training_set import TrainingSet, build_training_set

__all__ = ["AGGREGATES", "FEATURE_MODES", "HEAD_CLASSES", "HEAD_KINDS", "OBJECTIVES", "STAT_KEYS", "EnsembleHead",
           "Examples", "HeadBase", "HeadKind", "LightGBMHead", "Objective", "RewardHead", "RewardModel", "TorchHead",
           "TrainingSet", "build_training_set", "featurize_dataset", "featurize_texts", "load_head", "make_head",
           "register_head_class", "register_head_kind", "register_objective"]
