"""The fine-grained study's per-pair and per-answer measures: is a pair ordered right, which objective decided it,
and a detector's AUC with a bootstrap CI over questions."""

from __future__ import annotations

import numpy as np

from rewardlab.evaluate.bootstrap import Estimate, GroupBootstrap


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


def weighted_auc(scores: np.ndarray, labels: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """AUC (P(a positive scores above a negative), ties count half) under each row of ``counts`` (how often each item
    is drawn), as a vector over rows: positives and negatives are tallied per distinct score, in score order."""
    levels, index = np.unique(scores, return_inverse=True)
    onehot = np.zeros((len(scores), len(levels)))
    onehot[np.arange(len(scores)), index] = 1.0
    positive = labels > 0.5
    pos = counts @ (onehot * positive[:, None])
    neg = counts @ (onehot * ~positive[:, None])
    below = np.cumsum(neg, axis=1) - neg
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray((pos * (below + 0.5 * neg)).sum(1) / (pos.sum(1) * neg.sum(1)))


def auc_estimate(scores: np.ndarray, labels: np.ndarray, bootstrap: GroupBootstrap) -> Estimate:
    """AUC of ``scores`` as a detector of ``labels`` (1 = positive), CI from ``bootstrap``'s resamples of groups."""
    scores, labels = np.asarray(scores, dtype=np.float64), np.asarray(labels, dtype=np.float64)
    n_pos, n_neg = int((labels > 0.5).sum()), int((labels <= 0.5).sum())
    if not n_pos or not n_neg:
        return Estimate(float("nan"), float("nan"), float("nan"), len(labels))
    value = float(weighted_auc(scores, labels, np.ones((1, len(scores))))[0])
    item_counts = np.asarray(bootstrap.weights)[:, bootstrap.group_index].astype(np.float64)
    samples = weighted_auc(scores, labels, item_counts)
    samples = samples[np.isfinite(samples)]
    tail = (1 - bootstrap.level) / 2 * 100
    low, high = np.percentile(samples, [tail, 100 - tail]) if len(samples) else (float("nan"), float("nan"))
    return Estimate(value, float(low), float(high), len(labels))
