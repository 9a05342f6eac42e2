"""Metrics with confidence intervals, paired comparisons, cross-validation by prompt, held-out evaluation,
best-of-n against gold, length controls, run records."""

from rewardlab.evaluate.best_of_n import BestOfNResult, best_of_n, summarize_best_of_n
from rewardlab.evaluate.bootstrap import Estimate, GroupBootstrap
from rewardlab.evaluate.crossval import CrossValResult, LearnerSpec, cross_validate
from rewardlab.evaluate.holdout import HoldoutResult, evaluate_model
from rewardlab.evaluate.length_controls import LengthAudit, LengthControls, LengthHead, fit_length_head
from rewardlab.evaluate.pairwise import paired_difference, pairwise_correct, pairwise_metrics, preference_probability

__all__ = ["BestOfNResult", "CrossValResult", "Estimate", "GroupBootstrap", "HoldoutResult", "LearnerSpec", "LengthAudit",
           "LengthControls", "LengthHead", "best_of_n", "cross_validate", "evaluate_model", "fit_length_head",
           "paired_difference", "pairwise_correct", "pairwise_metrics", "preference_probability", "summarize_best_of_n"]
