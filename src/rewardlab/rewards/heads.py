"""Head kinds by name (``bt-mlp``, ``clf-lgbm``, ...), building them and loading them back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from rewardlab.errors import ModelError
from rewardlab.rewards.ensemble import EnsembleHead
from rewardlab.rewards.lightgbm_head import LightGBMHead
from rewardlab.rewards.torch_head import TorchHead
from rewardlab.rewards.training_set import TrainingSet


class RewardHead(Protocol):
    """scikit-learn style: the constructor stores parameters, ``fit`` returns self, ``predict`` is pure."""

    fit_log: dict[str, Any]

    def params(self) -> dict[str, Any]: ...

    def fit(self, data: TrainingSet) -> RewardHead: ...

    def predict(self, x: np.ndarray) -> np.ndarray: ...

    def save(self, directory: Path) -> None: ...


#: kind -> (head class, fixed parameters, what it learns from)
HEAD_KINDS: dict[str, tuple[type, dict[str, Any], str]] = {
    "bt-linear": (TorchHead, {"objective": "bt", "hidden": 0}, "comparisons"),
    "bt-mlp": (TorchHead, {"objective": "bt", "hidden": 256}, "comparisons"),
    "clf-logistic": (TorchHead, {"objective": "clf", "hidden": 0}, "comparisons"),
    "clf-mlp": (TorchHead, {"objective": "clf", "hidden": 256}, "comparisons"),
    "clf-lgbm": (LightGBMHead, {"objective": "clf"}, "comparisons"),
    "outcome-logistic": (TorchHead, {"objective": "outcome", "hidden": 0}, "labels"),
    "outcome-mlp": (TorchHead, {"objective": "outcome", "hidden": 256}, "labels"),
    "outcome-lgbm": (LightGBMHead, {"objective": "outcome"}, "labels"),
    "rating-linear": (TorchHead, {"objective": "rating", "hidden": 0}, "ratings"),
    "rating-mlp": (TorchHead, {"objective": "rating", "hidden": 256}, "ratings"),
    "rating-lgbm": (LightGBMHead, {"objective": "rating"}, "ratings"),
}


def make_head(kind: str, seed: int = 0, ensemble: int = 0, **params: Any) -> Any:
    """A fresh head of ``kind``; ``ensemble=n`` (n >= 2) wraps n seeds of it in an `EnsembleHead`."""
    if kind not in HEAD_KINDS:
        raise ModelError(f"unknown head kind {kind!r}; known: {', '.join(HEAD_KINDS)}")
    head_class, fixed, _ = HEAD_KINDS[kind]
    if ensemble:
        aggregate = params.pop("aggregate", "mean")
        lam = params.pop("lam", 1.0)
        return EnsembleHead(lambda s: head_class(seed=s, **fixed, **params), n=ensemble, seed=seed,
                            aggregate=aggregate, lam=lam, member_kind=kind)
    try:
        return head_class(seed=seed, **fixed, **params)
    except TypeError as exc:
        raise ModelError(f"bad parameters for head {kind!r}: {exc}") from None


def load_head(directory: Path) -> Any:
    config_path = directory / "head.json"
    if not config_path.exists():
        raise ModelError(f"{directory}: no head.json")
    head_class = json.loads(config_path.read_text(encoding="utf-8"))["class"]
    if head_class == "torch":
        return TorchHead.load(directory)
    if head_class == "lightgbm":
        return LightGBMHead.load(directory)
    if head_class == "ensemble":
        return EnsembleHead.load(directory, load_head)
    raise ModelError(f"{config_path}: unknown head class {head_class!r}")
