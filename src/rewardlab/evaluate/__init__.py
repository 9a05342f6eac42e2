"""Metrics with confidence intervals, paired comparisons, cross-validation by prompt, run records."""

from rewardlab.evaluate.bootstrap import Estimate, GroupBootstrap
from rewardlab.evaluate.crossval import CrossValResult, LearnerSpec, cross_validate
from rewardlab.evaluate.pairwise import paired_difference, pairwise_correct, pairwise_metrics, preference_probability

__all__ = ["CrossValResult", "Estimate", "GroupBootstrap", "LearnerSpec", "cross_validate", "paired_difference",
           "pairwise_correct", "pairwise_metrics", "preference_probability"]
