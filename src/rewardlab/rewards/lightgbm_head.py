"""Gradient-boosted trees (LightGBM) as a reward head: classification, outcome or rating objectives.

Bradley-Terry has no tree form here (trees cannot be fitted to reward differences with LightGBM's
built-in objectives), which is one reason the classification view of preferences is useful.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from rewardlab.errors import ModelError
from rewardlab.rewards.base import FitProgress, HeadBase, read_head_json, register_head_class, write_head_json
from rewardlab.rewards.objectives import get_objective, split_for_early_stopping
from rewardlab.rewards.training_set import TrainingSet


def _threads() -> int:
    """``OMP_NUM_THREADS`` where set (a cross-validation's fold worker sets it to its share of the cores: threads
    beyond the cores make LightGBM's busy-waiting threads crawl), else every core."""
    setting = os.environ.get("OMP_NUM_THREADS", "")
    return int(setting) if setting.isdigit() and int(setting) > 0 else max(1, os.cpu_count() or 1)


@register_head_class
class LightGBMHead(HeadBase):
    """Boosted trees on pointwise examples: logits for probability objectives, values for regression ones."""

    class_name: ClassVar[str] = "lightgbm"

    def __init__(
        self,
        objective: str = "clf",
        n_estimators: int = 500,
        learning_rate: float = 0.05,
        num_leaves: int = 15,
        min_child_samples: int = 20,
        feature_fraction: float = 0.5,
        seed: int = 0,
        val_fraction: float = 0.1,
        patience: int = 30,
        max_bin: int = 63,
    ) -> None:
        self.objective = objective
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.feature_fraction = feature_fraction
        self.seed = seed
        self.val_fraction = val_fraction
        self.patience = patience
        self.max_bin = max_bin

    def fit(self, data: TrainingSet, on_progress: FitProgress | None = None) -> LightGBMHead:
        import lightgbm as lgb

        objective = get_objective(self.objective)
        if objective.pairwise:
            raise ModelError(f"LightGBM heads fit pointwise objectives (clf, outcome, rating), not {self.objective!r}")
        split = split_for_early_stopping(self.objective, data, self.val_fraction, self.seed)
        ex = split.train_examples
        booster_params = {
            "objective": "regression" if objective.regression else "cross_entropy",
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_child_samples": self.min_child_samples,
            "feature_fraction": self.feature_fraction,
            "max_bin": self.max_bin,
            "seed": self.seed,
            "deterministic": True,
            "force_row_wise": True,
            "num_threads": _threads(),
            "verbosity": -1,
        }
        weight = None  # the training set's pair weights (e.g. annotator reliability) reach the rows of their pairs
        if len(split.train.pair_weight) and ex.source_pair is not None:
            weight = split.train.pair_weights()[ex.source_pair]
        train_ds = lgb.Dataset(split.train.x[ex.left], label=ex.target, weight=weight)
        callbacks: list[Callable[..., Any]] = []
        valid_sets: list[Any] = []
        if split.val is not None and split.val_examples is not None:
            val_ex = split.val_examples
            valid_sets = [lgb.Dataset(split.val.x[val_ex.left], label=val_ex.target, reference=train_ds)]
            callbacks = [lgb.early_stopping(self.patience, verbose=False)]
        if on_progress is not None:
            report, rounds = on_progress, self.n_estimators
            callbacks.append(lambda env: report(env.iteration + 1, rounds))
        booster = lgb.train(booster_params, train_ds, num_boost_round=self.n_estimators,
                            valid_sets=valid_sets, callbacks=callbacks)
        if on_progress is not None:
            on_progress(self.n_estimators, self.n_estimators)  # done (early stopping may end sooner)
        self.booster_: Any = booster
        self.fit_log_ = {"trees": booster.current_iteration(), "best_iteration": booster.best_iteration,
                         "n_train_examples": len(ex)}
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        self._check_fitted()
        iteration = self.booster_.best_iteration or None
        raw = not get_objective(self.objective).regression  # logits for the probability objectives
        return np.asarray(self.booster_.predict(x, raw_score=raw, num_iteration=iteration), dtype=np.float64)

    def save(self, directory: Path) -> None:
        self._check_fitted()
        write_head_json(directory, self, self.class_name)
        (directory / "head.lgbm.txt").write_text(self.booster_.model_to_string(), encoding="utf-8")

    @classmethod
    def load(cls, directory: Path) -> LightGBMHead:
        import lightgbm as lgb

        config = read_head_json(directory)
        head = cls(**config["params"])
        get_objective(head.objective)  # a damaged head.json fails here, not at the first prediction
        head.fit_log_ = config.get("fit_log", {})
        head.booster_ = lgb.Booster(model_str=(directory / "head.lgbm.txt").read_text(encoding="utf-8"))
        return head
