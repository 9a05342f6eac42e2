"""Choosing a knn prompt model's settings by cross-validation on the training queries (`KnnTuner`), and the
one-standard-error rule that falls back to the best single prompt when per-query selection shows no gain.

Kept apart from the model (`rewardlab.optimize.prompts`) because tuning is a procedure over many prompt pools
(the Prompt-OIRL table tunes one per subset of prompts), not part of what a fitted model is.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from rewardlab.errors import ModelError
from rewardlab.optimize.prompts import PromptRewardModel, nearest_queries, neighbour_rates

#: the knn settings `KnnTuner` searches: neighbours × shrinkage weight × similarity temperature
KNN_GRID: dict[str, tuple[float, ...]] = {"neighbours": (10, 20, 50, 100), "prior_weight": (0.5, 1.0, 3.0),
                                           "similarity_temperature": (0.02, 0.05, 0.1)}


@dataclass
class KnnTuning:
    """The knn settings that selected best in cross-validation on training queries, and every setting's score.

    ``best_prompt_cv_success`` is the query-agnostic baseline on the same folds (each fold uses the prompt with
    the highest success rate on the other folds), and ``cv_gain_se`` the standard error of the per-query
    difference. A gain within one standard error is no evidence of a query-dependent signal, found before any
    test number is looked at (and the best of a grid leans high, so the bar is not a formality)."""

    neighbours: int
    prior_weight: float
    similarity_temperature: float
    cv_success: float
    best_prompt_cv_success: float
    cv_gain_se: float
    scores: list[dict[str, float]]

    @property
    def cv_gain(self) -> float:
        """Cross-validated success of these settings minus that of the best single prompt on the same folds."""
        return self.cv_success - self.best_prompt_cv_success

    @property
    def query_dependent(self) -> bool:
        """Per-query selection only when it beat the best single prompt out of fold by more than one standard
        error (the one-standard-error rule: otherwise the simpler, query-agnostic policy)."""
        return self.cv_gain > self.cv_gain_se

    def configure(self, model: PromptRewardModel) -> PromptRewardModel:
        """Give a knn model these settings, query-agnostic when cross-validation found no gain."""
        model.neighbours, model.prior_weight = self.neighbours, self.prior_weight
        model.similarity_temperature, model.query_agnostic = self.similarity_temperature, not self.query_dependent
        return model

    def describe(self) -> str:
        """The chosen settings in one short line (K, w, T), or that the best single prompt was kept."""
        return (f"K={self.neighbours} w={self.prior_weight:g} T={self.similarity_temperature:g}" if self.query_dependent
                else "best single prompt (no CV gain)")


class KnnTuner:
    """Picks knn settings by the success rate of the prompt each one selects on held-out training queries.

    Neighbours are found once per fold, so tuning for many prompt pools (every subset of training prompts)
    costs little more than tuning for one. Rows sharing a ``fold_groups`` id stay in one fold, so folds can
    mimic the evaluation split (by question for a leak-free split, by row for a row split).
    """

    def __init__(self, query_vecs: np.ndarray, fold_groups: np.ndarray, folds: int = 5, seed: int = 0,
                 grid: dict[str, tuple[float, ...]] | None = None) -> None:
        self.grid = grid or KNN_GRID
        self.settings = list(itertools.product(*(self.grid[name] for name in KNN_GRID)))
        unique = np.unique(fold_groups)
        if len(unique) < 2:
            raise ModelError("knn tuning needs at least two groups of training queries")
        fold_of_group = np.random.default_rng(seed).permutation(len(unique)) % min(folds, len(unique))
        self.fold = fold_of_group[np.searchsorted(unique, fold_groups)]
        vectors = np.asarray(query_vecs, dtype=np.float32)
        self._neighbours = {int(f): nearest_queries(vectors[self.fold == f], vectors[self.fold != f],
                                             int(max(self.grid["neighbours"])))
                            for f in np.unique(self.fold)}

    def tune(self, labels: np.ndarray) -> KnnTuning:
        """``labels``: (training queries, pool prompts), every cell observed."""
        labels = np.asarray(labels, dtype=np.float32)
        if labels.shape[0] != len(self.fold) or np.isnan(labels).any():
            raise ModelError("knn tuning needs every pool prompt labelled on every training query")
        hits = np.zeros((len(self.settings), len(labels)))  # per setting, per query: did its pick succeed
        baseline = np.zeros(len(labels))
        for f, (top_sim, top_idx) in self._neighbours.items():
            held = self.fold == f
            rows = np.arange(int(held.sum()))
            baseline[held] = labels[held][:, int(np.argmax(labels[~held].mean(axis=0)))]
            for i, (neighbours, prior_weight, temperature) in enumerate(self.settings):
                k = int(neighbours)
                rates = neighbour_rates(top_sim[:, :k], top_idx[:, :k], labels[~held], prior_weight, temperature)
                hits[i, held] = labels[held][rows, np.argmax(rates, axis=1)]
        success = hits.mean(axis=1)
        scores = [{"neighbours": int(n), "prior_weight": w, "similarity_temperature": t, "cv_success": float(s)}
                  for (n, w, t), s in zip(self.settings, success)]
        chosen = int(np.argmax(success))
        best = scores[chosen]
        difference = hits[chosen] - baseline
        return KnnTuning(int(best["neighbours"]), best["prior_weight"], best["similarity_temperature"], best["cv_success"],
                         float(baseline.mean()), float(difference.std(ddof=1) / np.sqrt(len(difference))), scores)


def fit_tuned_knn(query_vecs: np.ndarray, prompt_vecs: np.ndarray, labels: np.ndarray, prompt_texts: list[str],
                  query_groups: np.ndarray, seed: int = 0) -> PromptRewardModel:
    """A knn prompt model whose settings `KnnTuner` chose on these training queries (folds by query group,
    so the choice is made for queries not seen in training), query-agnostic when per-query selection beat
    the best single prompt there by no more than one standard error. Only fully labelled rows take part in tuning."""
    labels = np.asarray(labels, dtype=np.float32)
    complete = ~np.isnan(labels).any(axis=1)
    model = PromptRewardModel(head="knn", seed=seed)
    if len(np.unique(np.asarray(query_groups)[complete])) >= 2:
        tuning = KnnTuner(query_vecs[complete], np.asarray(query_groups)[complete], seed=seed).tune(labels[complete])
        model = tuning.configure(PromptRewardModel(head="knn", seed=seed))
        model.fit(query_vecs, prompt_vecs, labels, prompt_texts, query_groups)
        model.fit_log["knn_tuning"] = {"neighbours": tuning.neighbours, "prior_weight": tuning.prior_weight,
                                       "similarity_temperature": tuning.similarity_temperature,
                                       "cv_success": tuning.cv_success,
                                       "best_prompt_cv_success": tuning.best_prompt_cv_success,
                                       "cv_gain_se": tuning.cv_gain_se,
                                       "query_agnostic": model.query_agnostic,
                                       "rows": int(complete.sum())}
        return model
    return model.fit(query_vecs, prompt_vecs, labels, prompt_texts, query_groups)
