"""The card's measurements that are not metrics elsewhere: the reliability diagram's bins, the score distribution,
the examples a reader should look at, and which responses got the highest rewards.

Texts kept for the card are clipped (`clip_text`) so a record of a large held-out set stays readable; escaping them is
the renderer's job, never this module's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from rewardlab.data.dataset import FeedbackDataset
from rewardlab.evaluate.pairwise import N_CALIBRATION_BINS, preference_probability

#: characters of a response kept for the card's examples, and of a prompt (its end: where a dialogue's question is)
EXAMPLE_CHARS = 1500
PROMPT_CHARS = 600
N_SCORE_BINS = 30
N_TOP_REWARDED = 5


def clip_text(text: str, limit: int = EXAMPLE_CHARS) -> str:
    """``text`` up to ``limit`` characters, saying how many were left out."""
    return text if len(text) <= limit else f"{text[:limit]}… [{len(text) - limit} more characters]"


def clip_prompt(text: str, limit: int = PROMPT_CHARS) -> str:
    """A prompt's last ``limit`` characters (a multi-turn dialogue ends with what is being answered)."""
    text = text.strip()
    return text if len(text) <= limit else f"[{len(text) - limit} earlier characters] …{text[-limit:]}"


def reliability_bins(score_a: np.ndarray, score_b: np.ndarray, target: np.ndarray) -> list[dict[str, Any]]:
    """The reliability diagram over decided pairs: per confidence bin (max(p, 1−p) in [0.5, 1]), the mean confidence,
    how often the favoured side won, and n. The same bins as the ECE of `rewardlab.evaluate.pairwise`."""
    decided = np.asarray(target) != 0.5
    p = preference_probability(score_a, score_b)[decided]
    won = (np.asarray(target)[decided] == 1)
    confidence = np.maximum(p, 1 - p)
    hit = (p > 0.5) == won
    which = np.minimum(((confidence - 0.5) * 2 * N_CALIBRATION_BINS).astype(int), N_CALIBRATION_BINS - 1)
    bins = []
    for b in range(N_CALIBRATION_BINS):
        inside = which == b
        n = int(inside.sum())
        bins.append({"low": 0.5 + b / (2 * N_CALIBRATION_BINS), "high": 0.5 + (b + 1) / (2 * N_CALIBRATION_BINS),
                     "n": n, "confidence": float(confidence[inside].mean()) if n else None,
                     "accuracy": float(hit[inside].mean()) if n else None})
    return bins


def score_distribution(score_a: np.ndarray, score_b: np.ndarray, target: np.ndarray) -> dict[str, Any]:
    """Histograms (shared edges) of the rewards of the human-preferred and the rejected responses of decided pairs."""
    target = np.asarray(target)
    decided = target != 0.5
    a_won = target[decided] == 1
    a, b = np.asarray(score_a)[decided], np.asarray(score_b)[decided]
    preferred, rejected = np.where(a_won, a, b), np.where(a_won, b, a)
    both = np.concatenate([preferred, rejected])
    if not len(both):
        return {"edges": [], "preferred": [], "rejected": []}
    edges = np.histogram_bin_edges(both, bins=N_SCORE_BINS)
    return {"edges": edges.tolist(), "preferred": np.histogram(preferred, edges)[0].tolist(),
            "rejected": np.histogram(rejected, edges)[0].tolist()}


def confident_mistakes(dataset: FeedbackDataset, score_a: np.ndarray, score_b: np.ndarray, target: np.ndarray,
                       k: int) -> list[dict[str, Any]]:
    """The ``k`` decided pairs the model got wrong with the most confidence: texts, both rewards, and the probability
    the model gave the rejected response."""
    comps = dataset.comparisons
    target = np.asarray(target)
    p = preference_probability(score_a, score_b)
    p_rejected = np.where(target == 1, 1 - p, p)  # P(the human-rejected side wins) under the model
    wrong = [i for i in np.argsort(-p_rejected, kind="stable") if target[i] != 0.5 and p_rejected[i] > 0.5][:k]
    rows = []
    for i in wrong:
        comp = comps[i]
        good, bad = (comp.a, comp.b) if target[i] == 1 else (comp.b, comp.a)
        good_score, bad_score = (score_a[i], score_b[i]) if target[i] == 1 else (score_b[i], score_a[i])
        rows.append({"prompt": clip_prompt(dataset.prompts[comp.prompt_id].text),
                     "preferred": clip_text(dataset.responses[good].text),
                     "rejected": clip_text(dataset.responses[bad].text),
                     "reward_preferred": float(good_score), "reward_rejected": float(bad_score),
                     "p_rejected": float(p_rejected[i]), "annotator": comp.annotator_id})
    return rows


def top_rewarded(dataset: FeedbackDataset, response_ids: Sequence[str], rewards: np.ndarray,
                 k: int = N_TOP_REWARDED) -> list[dict[str, Any]]:
    """The ``k`` highest-rewarded responses, with their reward in standard deviations above the mean and their length:
    what an optimizer pushing this reward would produce more of."""
    rewards = np.asarray(rewards, dtype=np.float64)
    spread = float(rewards.std()) or 1.0
    rows = []
    for i in np.argsort(-rewards, kind="stable")[:k]:
        response = dataset.responses[response_ids[i]]
        rows.append({"prompt": clip_prompt(dataset.prompts[response.prompt_id].text), "response": clip_text(response.text),
                     "reward": float(rewards[i]), "reward_sd": float((rewards[i] - rewards.mean()) / spread),
                     "characters": len(response.text)})
    return rows
