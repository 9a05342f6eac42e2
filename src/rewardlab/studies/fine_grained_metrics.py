"""The fine-grained study's per-pair measures: is a pair ordered right, and which objective decided it. (A detector's
AUC with a bootstrap CI is `rewardlab.evaluate.span_detection.auc_estimate`.)"""

from __future__ import annotations

import numpy as np


def pair_correct(reward: np.ndarray, a: np.ndarray, b: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per decided pair: 1 when ``reward`` orders it as the label does, 0 when the other way, 0.5 on a tie of rewards
    (a coin flip's expectation)."""
    diff = np.sign(reward[a] - reward[b])
    wanted = np.where(target > 0.5, 1.0, -1.0)
    return np.where(diff == 0, 0.5, (diff == wanted).astype(float))


def deciders(objectives: np.ndarray, weights: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(n_pairs, K) one-hot: the objective whose weighted difference w_k·(o_k(a) − o_k(b)) is largest in magnitude
    among those pointing the way the model picks (a pair the model scores level has no decider: a zero row).

    Both answers of a pair share a prompt, so they share the gate's weights; answer a's are used."""
    contribution = weights[a] * (objectives[a] - objectives[b])
    total = contribution.sum(1, keepdims=True)
    agreeing = np.where(np.sign(contribution) == np.sign(total), np.abs(contribution), -1.0)
    out = np.zeros_like(contribution)
    decided = (total[:, 0] != 0) & (agreeing.max(1) >= 0)
    out[np.flatnonzero(decided), agreeing[decided].argmax(1)] = 1.0
    return out
