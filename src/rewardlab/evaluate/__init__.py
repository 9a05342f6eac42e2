"""Metrics with confidence intervals, paired comparisons, cross-validation by prompt, held-out evaluation,
best-of-n against gold, length controls, bias probes, slices, reward-scale risk, run records.

Names load on first use: best-of-n needs scipy, cross-validation needs torch."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rewardlab.lazy import lazy_exports

_EXPORTS = {
    "BestOfNResult": "rewardlab.evaluate.best_of_n",
    "best_of_n": "rewardlab.evaluate.best_of_n",
    "summarize_best_of_n": "rewardlab.evaluate.best_of_n",
    "Estimate": "rewardlab.evaluate.bootstrap",
    "GroupBootstrap": "rewardlab.evaluate.bootstrap",
    "CrossValResult": "rewardlab.evaluate.crossval",
    "LearnerSpec": "rewardlab.evaluate.crossval",
    "cross_validate": "rewardlab.evaluate.crossval",
    "HoldoutResult": "rewardlab.evaluate.holdout",
    "evaluate_model": "rewardlab.evaluate.holdout",
    "LengthAudit": "rewardlab.evaluate.length_controls",
    "LengthControls": "rewardlab.evaluate.length_controls",
    "LengthHead": "rewardlab.evaluate.length_controls",
    "fit_length_head": "rewardlab.evaluate.length_controls",
    "paired_difference": "rewardlab.evaluate.pairwise",
    "pairwise_correct": "rewardlab.evaluate.pairwise",
    "pairwise_metrics": "rewardlab.evaluate.pairwise",
    "preference_probability": "rewardlab.evaluate.pairwise",
    "PROBES": "rewardlab.evaluate.probes",
    "register_probe": "rewardlab.evaluate.probes",
    "run_fixed_probes": "rewardlab.evaluate.probes",
    "run_probes": "rewardlab.evaluate.probes",
    "disagreement_along_scale": "rewardlab.evaluate.reward_risk",
    "tail_shape": "rewardlab.evaluate.reward_risk",
    "slice_accuracy": "rewardlab.evaluate.slices",
}

__all__ = ["BestOfNResult", "CrossValResult", "Estimate", "GroupBootstrap", "HoldoutResult", "LearnerSpec", "LengthAudit",
           "LengthControls", "LengthHead", "best_of_n", "cross_validate", "evaluate_model", "fit_length_head",
           "PROBES", "disagreement_along_scale", "paired_difference", "pairwise_correct", "pairwise_metrics",
           "preference_probability", "register_probe", "run_fixed_probes", "run_probes", "slice_accuracy",
           "summarize_best_of_n", "tail_shape"]

if TYPE_CHECKING:
    from rewardlab.evaluate.best_of_n import BestOfNResult, best_of_n, summarize_best_of_n
    from rewardlab.evaluate.bootstrap import Estimate, GroupBootstrap
    from rewardlab.evaluate.crossval import CrossValResult, LearnerSpec, cross_validate
    from rewardlab.evaluate.holdout import HoldoutResult, evaluate_model
    from rewardlab.evaluate.length_controls import LengthAudit, LengthControls, LengthHead, fit_length_head
    from rewardlab.evaluate.pairwise import paired_difference, pairwise_correct, pairwise_metrics, preference_probability
    from rewardlab.evaluate.probes import PROBES, register_probe, run_fixed_probes, run_probes
    from rewardlab.evaluate.reward_risk import disagreement_along_scale, tail_shape
    from rewardlab.evaluate.slices import slice_accuracy


__getattr__ = lazy_exports(__name__, _EXPORTS)
