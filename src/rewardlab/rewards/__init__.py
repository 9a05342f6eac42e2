"""Reward learners on cached embeddings: Bradley-Terry, classification, pointwise, ensembles."""

from rewardlab.rewards.ensemble import EnsembleHead
from rewardlab.rewards.features import FEATURE_MODES, featurize_dataset, featurize_texts
from rewardlab.rewards.heads import HEAD_KINDS, load_head, make_head
from rewardlab.rewards.lightgbm_head import LightGBMHead
from rewardlab.rewards.model import RewardModel
from rewardlab.rewards.torch_head import TorchHead
from rewardlab.rewards.training_set import TrainingSet, build_training_set

__all__ = ["FEATURE_MODES", "HEAD_KINDS", "EnsembleHead", "LightGBMHead", "RewardModel", "TorchHead", "TrainingSet",
           "build_training_set", "featurize_dataset", "featurize_texts", "load_head", "make_head"]
