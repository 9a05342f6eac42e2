"""Gradient-boosted trees (LightGBM) as a reward head: classification, outcome or rating objectives.

Bradley-Terry has no tree form here (trees cannot be fitted to reward differences with LightGBM's
built-in objectives), which is one reason the classification view of preferences is useful.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from rewardlab.errors import ModelError
from rewardlab.rewards.objectives import split_for_early_stopping
from rewardlab.rewards.training_set import TrainingSet


class LightGBMHead:
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
        if objective == "bt":
            raise ModelError("LightGBM heads support clf, outcome and rating objectives, not bt")
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
        self.booster: Any = None
        self.fit_log: dict[str, Any] = {}

    def params(self) -> dict[str, Any]:
        return {"objective": self.objective, "n_estimators": self.n_estimators, "learning_rate": self.learning_rate,
                "num_leaves": self.num_leaves, "min_child_samples": self.min_child_samples,
                "feature_fraction": self.feature_fraction, "seed": self.seed, "val_fraction": self.val_fraction,
                "patience": self.patience, "max_bin": self.max_bin}

    def fit(self, data: TrainingSet) -> LightGBMHead:
        import lightgbm as lgb

        split = split_for_early_stopping(self.objective, data, self.val_fraction, self.seed)
        ex = split.train_examples
        booster_params = {
            "objective": "regression" if self.objective == "rating" else "cross_entropy",
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_child_samples": self.min_child_samples,
            "feature_fraction": self.feature_fraction,
            "max_bin": self.max_bin,
            "seed": self.seed,
            "deterministic": True,
            "force_row_wise": True,
            "num_threads": max(1, os.cpu_count() or 1),
            "verbosity": -1,
        }
        train_ds = lgb.Dataset(split.train.x[ex.left], label=ex.target)
        callbacks = []
        valid_sets = []
        if split.val is not None and split.val_examples is not None:
            val_ex = split.val_examples
            valid_sets = [lgb.Dataset(split.val.x[val_ex.left], label=val_ex.target, reference=train_ds)]
            callbacks = [lgb.early_stopping(self.patience, verbose=False)]
        self.booster = lgb.train(booster_params, train_ds, num_boost_round=self.n_estimators,
                                 valid_sets=valid_sets, callbacks=callbacks)
        self.fit_log = {"trees": self.booster.current_iteration(), "best_iteration": self.booster.best_iteration,
                        "n_train_examples": len(ex)}
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        if self.booster is None:
            raise RuntimeError("head is not fitted")
        iteration = self.booster.best_iteration or None
        raw = self.objective != "rating"  # logits for the classification objectives
        return np.asarray(self.booster.predict(x, raw_score=raw, num_iteration=iteration), dtype=np.float64)

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        config = {"class": "lightgbm", "params": self.params(), "fit_log": self.fit_log}
        (directory / "head.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
        (directory / "head.lgbm.txt").write_text(self.booster.model_to_string(), encoding="utf-8")

    @classmethod
    def load(cls, directory: Path) -> LightGBMHead:
        import lightgbm as lgb

        config = json.loads((directory / "head.json").read_text(encoding="utf-8"))
        head = cls(**config["params"])
        head.fit_log = config.get("fit_log", {})
        head.booster = lgb.Booster(model_str=(directory / "head.lgbm.txt").read_text(encoding="utf-8"))
        return head
