"""Linear and MLP reward heads trained with torch, for every objective."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.numpy import load_file, save_file
from torch import nn

from rewardlab.rewards.objectives import Examples, split_for_early_stopping
from rewardlab.rewards.torch_training import (
    TrainParams,
    build_net,
    load_numpy_state,
    predict_net,
    state_to_numpy,
    train_network,
)
from rewardlab.rewards.training_set import TrainingSet


class TorchHead:
    """A reward r(x) = net(x), fitted for one objective with early stopping on a prompt-split."""

    def __init__(
        self,
        objective: str,
        hidden: int = 256,
        dropout: float = 0.1,
        seed: int = 0,
        val_fraction: float = 0.1,
        **train: Any,
    ) -> None:
        self.objective = objective
        self.hidden = hidden
        self.dropout = dropout
        self.seed = seed
        self.val_fraction = val_fraction
        self.train_params = TrainParams(**train)
        self.net: nn.Module | None = None
        self.dim: int | None = None
        self.rating_mean = 0.0
        self.rating_std = 1.0
        self.fit_log: dict[str, Any] = {}

    def params(self) -> dict[str, Any]:
        return {"objective": self.objective, "hidden": self.hidden, "dropout": self.dropout, "seed": self.seed,
                "val_fraction": self.val_fraction, **asdict(self.train_params)}

    # ------------------------------------------------------------------ fitting
    def _loss(self, net: nn.Module, x: torch.Tensor, ex: Examples, rows: torch.Tensor | None) -> torch.Tensor:
        idx = torch.arange(len(ex)) if rows is None else rows
        target = torch.from_numpy(ex.target)[idx]
        left = net(x[torch.from_numpy(ex.left)[idx]]).squeeze(-1)
        if self.objective == "bt":
            assert ex.right is not None
            right = net(x[torch.from_numpy(ex.right)[idx]]).squeeze(-1)
            return nn.functional.binary_cross_entropy_with_logits(left - right, target)
        if self.objective == "rating":
            return nn.functional.mse_loss(left, (target - self.rating_mean) / self.rating_std)
        return nn.functional.binary_cross_entropy_with_logits(left, target)

    def fit(self, data: TrainingSet) -> TorchHead:
        torch.manual_seed(self.seed)
        split = split_for_early_stopping(self.objective, data, self.val_fraction, self.seed)
        ex = split.train_examples
        if self.objective == "rating":
            self.rating_mean = float(ex.target.mean())
            self.rating_std = float(ex.target.std()) or 1.0
        self.dim = data.dim
        self.net = build_net(data.dim, self.hidden, self.dropout)
        x_train = torch.from_numpy(split.train.x)
        val_fn = None
        if split.val is not None and split.val_examples is not None:
            x_val, ex_val = torch.from_numpy(split.val.x), split.val_examples
            val_fn = lambda net: float(self._loss(net, x_val, ex_val, None))  # noqa: E731
        log = train_network(
            self.net, len(ex), lambda net, rows: self._loss(net, x_train, ex, rows), val_fn, self.train_params, self.seed
        )
        self.fit_log = {"epochs": log.epochs, "best_epoch": log.best_epoch, "best_val_loss": log.best_val_loss,
                        "n_train_examples": len(ex)}
        return self

    # ------------------------------------------------------------------ using
    def predict(self, x: np.ndarray) -> np.ndarray:
        if self.net is None:
            raise RuntimeError("head is not fitted")
        out = predict_net(self.net, x)
        if self.objective == "rating":
            out = out * self.rating_std + self.rating_mean
        return out

    def save(self, directory: Path) -> None:
        assert self.net is not None and self.dim is not None
        directory.mkdir(parents=True, exist_ok=True)
        config = {"class": "torch", "params": self.params(), "dim": self.dim, "rating_mean": self.rating_mean,
                  "rating_std": self.rating_std, "fit_log": self.fit_log}
        (directory / "head.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
        save_file(state_to_numpy(self.net), str(directory / "head.safetensors"))

    @classmethod
    def load(cls, directory: Path) -> TorchHead:
        config = json.loads((directory / "head.json").read_text(encoding="utf-8"))
        head = cls(**config["params"])
        head.dim = config["dim"]
        head.rating_mean, head.rating_std = config["rating_mean"], config["rating_std"]
        head.fit_log = config.get("fit_log", {})
        head.net = build_net(head.dim, head.hidden, head.dropout)
        load_numpy_state(head.net, load_file(str(directory / "head.safetensors")))
        return head

