"""Pairwise metrics of a reward model on held-out comparisons: accuracy and calibration.

The model's preference probability is P(a beats b) = sigmoid(r(a) - r(b)), the Bradley-Terry reading
of any reward. Calibration is scored orientation-free: confidence = max(p, 1-p).
"""

from __future__ import annotations

import numpy as np

from rewardlab.evaluate.bootstrap import Estimate, GroupBootstrap

N_CALIBRATION_BINS = 10


def preference_probability(score_a: np.ndarray, score_b: np.ndarray) -> np.ndarray:
    """P(a beats b) per pair: sigmoid(score_a − score_b), the difference clipped to ±50 so exp cannot overflow."""
    diff = np.clip(np.asarray(score_a, np.float64) - np.asarray(score_b, np.float64), -50, 50)
    return 1.0 / (1.0 + np.exp(-diff))


def pairwise_correct(score_a: np.ndarray, score_b: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per pair: 1 if the higher-scored side won, 0 if it lost, 0.5 for an exact score tie."""
    diff = np.asarray(score_a, np.float64) - np.asarray(score_b, np.float64)
    predicted = np.where(diff > 0, 1.0, np.where(diff < 0, 0.0, 0.5))
    return np.where(predicted == 0.5, 0.5, (predicted == target).astype(np.float64))


def pairwise_metrics(
    score_a: np.ndarray, score_b: np.ndarray, target: np.ndarray, bootstrap: GroupBootstrap
) -> dict[str, Estimate]:
    """Accuracy, ECE, Brier and NLL over decided pairs (targets 0/1); ties in the labels are left out."""
    target = np.asarray(target, np.float64)
    decided = target != 0.5
    p = np.clip(preference_probability(score_a, score_b), 1e-12, 1 - 1e-12)
    correct = pairwise_correct(score_a, score_b, target)
    brier = (p - target) ** 2
    nll = -(target * np.log(p) + (1 - target) * np.log(1 - p))
    confidence = np.maximum(p, 1 - p)
    hit = ((p > 0.5) == (target == 1)).astype(np.float64)
    bins = np.minimum(((confidence - 0.5) * 2 * N_CALIBRATION_BINS).astype(int), N_CALIBRATION_BINS - 1)
    return {
        "accuracy": bootstrap.mean(correct, decided),
        "ece": bootstrap.binned_gap(bins, hit - confidence, N_CALIBRATION_BINS, decided),
        "brier": bootstrap.mean(brier, decided),
        "nll": bootstrap.mean(nll, decided),
    }


def paired_difference(
    correct_1: np.ndarray, correct_2: np.ndarray, mask: np.ndarray | None, bootstrap: GroupBootstrap
) -> Estimate:
    """Accuracy of learner 1 minus learner 2 on the same pairs and the same resamples."""
    return bootstrap.mean(np.asarray(correct_1) - np.asarray(correct_2), mask)
