"""Ensembles of reward heads: disagreement between members is the uncertainty estimate.

Conservative aggregates (``min`` over members, ``mean - λ·std``) are the standard guard against a policy
exploiting one model's mistakes (Coste et al., 2023).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from rewardlab.rewards.training_set import TrainingSet

AGGREGATES = ("mean", "min", "lcb")


def aggregate_members(scores: np.ndarray, lam: float = 1.0) -> dict[str, np.ndarray]:
    """Per-row aggregates of (n_members, n_rows) rewards: mean, std, min and the lower bound mean − λ·std."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2 or scores.shape[0] < 2:
        raise ValueError(f"expected (members >= 2, rows) scores, got shape {scores.shape}")
    mean, std = scores.mean(0), scores.std(0, ddof=1)
    return {"mean": mean, "std": std, "min": scores.min(0), "lcb": mean - lam * std}


class EnsembleHead:
    """``n`` members of one kind, differing by seed (initialisation, batch order, validation split)."""

    def __init__(self, make_member: Callable[[int], Any], n: int = 5, seed: int = 0, aggregate: str = "mean",
                 lam: float = 1.0, member_kind: str = "") -> None:
        if n < 2:
            raise ValueError("an ensemble needs at least 2 members")
        if aggregate not in AGGREGATES:
            raise ValueError(f"aggregate must be one of {AGGREGATES}")
        self.make_member = make_member
        self.n = n
        self.seed = seed
        self.aggregate = aggregate
        self.lam = lam
        self.member_kind = member_kind
        self.members: list[Any] = []
        self.fit_log: dict[str, Any] = {}

    def params(self) -> dict[str, Any]:
        return {"n": self.n, "seed": self.seed, "aggregate": self.aggregate, "lam": self.lam,
                "member_kind": self.member_kind}

    def fit(self, data: TrainingSet) -> EnsembleHead:
        self.members = [self.make_member(self.seed + i).fit(data) for i in range(self.n)]
        self.fit_log = {"members": [m.fit_log for m in self.members]}
        return self

    def predict_members(self, x: np.ndarray) -> np.ndarray:
        """(n_members, n_rows) rewards."""
        return np.stack([m.predict(x) for m in self.members])

    def predict_stats(self, x: np.ndarray, lam: float | None = None) -> dict[str, np.ndarray]:
        return aggregate_members(self.predict_members(x), self.lam if lam is None else lam)

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.predict_stats(x)[self.aggregate]

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        config = {"class": "ensemble", "params": self.params(), "fit_log": self.fit_log}
        (directory / "head.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
        for i, member in enumerate(self.members):
            member.save(directory / "members" / f"{i:03d}")

    @classmethod
    def load(cls, directory: Path, load_member: Callable[[Path], Any]) -> EnsembleHead:
        config = json.loads((directory / "head.json").read_text(encoding="utf-8"))
        head = cls(make_member=lambda seed: None, **config["params"])
        head.fit_log = config.get("fit_log", {})
        head.members = [load_member(directory / "members" / f"{i:03d}") for i in range(head.n)]
        return head
