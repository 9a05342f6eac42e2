"""Linear and MLP reward heads trained with torch, for every objective."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from safetensors.numpy import load_file, save_file
from torch import nn

from rewardlab.errors import ModelError
from rewardlab.rewards.base import FitProgress, HeadBase, read_head_json, register_head_class, write_head_json
from rewardlab.rewards.objectives import Examples, Objective, get_objective, split_for_early_stopping
from rewardlab.rewards.torch_training import (
    TrainParams,
    build_net,
    load_numpy_state,
    predict_net,
    state_to_numpy,
    train_network,
)
from rewardlab.rewards.training_set import TrainingSet


@register_head_class
class TorchHead(HeadBase):
    """A reward r(x) = net(x), fitted for one objective with early stopping on a prompt-split.

    ``hidden=0`` is a linear reward. Regression objectives train on standardised targets and map
    predictions back (``target_mean_``/``target_std_``, saved as ``rating_mean``/``rating_std``).
    """

    class_name: ClassVar[str] = "torch"

    def __init__(
        self,
        objective: str = "bt",
        hidden: int = 256,
        dropout: float = 0.1,
        seed: int = 0,
        val_fraction: float = 0.1,
        lr: float = TrainParams.lr,
        weight_decay: float = TrainParams.weight_decay,
        batch_size: int = TrainParams.batch_size,
        max_epochs: int = TrainParams.max_epochs,
        patience: int = TrainParams.patience,
    ) -> None:
        self.objective = objective
        self.hidden = hidden
        self.dropout = dropout
        self.seed = seed
        self.val_fraction = val_fraction
        self.lr = lr
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience

    def _train_params(self) -> TrainParams:
        return TrainParams(lr=self.lr, weight_decay=self.weight_decay, batch_size=self.batch_size,
                           max_epochs=self.max_epochs, patience=self.patience)

    # ------------------------------------------------------------------ fitting
    def _loss(self, objective: Objective, net: nn.Module, x: torch.Tensor, ex: Examples,
              rows: torch.Tensor | None) -> torch.Tensor:
        idx = torch.arange(len(ex)) if rows is None else rows
        target = torch.from_numpy(ex.target)[idx]
        left = net(x[torch.from_numpy(ex.left)[idx]]).squeeze(-1)
        if objective.pairwise:
            if ex.right is None:
                raise ModelError(f"pairwise objective {objective.name!r} gave examples without right-hand items")
            right = net(x[torch.from_numpy(ex.right)[idx]]).squeeze(-1)
            return nn.functional.binary_cross_entropy_with_logits(left - right, target)
        if objective.regression:
            return nn.functional.mse_loss(left, (target - self.target_mean_) / self.target_std_)
        return nn.functional.binary_cross_entropy_with_logits(left, target)

    def fit(self, data: TrainingSet, on_progress: FitProgress | None = None) -> TorchHead:
        objective = get_objective(self.objective)
        params = self._train_params()
        torch.manual_seed(self.seed)
        split = split_for_early_stopping(self.objective, data, self.val_fraction, self.seed)
        ex = split.train_examples
        self.target_mean_, self.target_std_ = 0.0, 1.0
        if objective.regression:
            self.target_mean_ = float(ex.target.mean())
            self.target_std_ = float(ex.target.std()) or 1.0
        self.dim_ = data.dim
        net = build_net(data.dim, self.hidden, self.dropout)
        x_train = torch.from_numpy(split.train.x)
        val_fn = None
        if split.val is not None and split.val_examples is not None:
            x_val, ex_val = torch.from_numpy(split.val.x), split.val_examples
            val_fn = lambda net: float(self._loss(objective, net, x_val, ex_val, None))  # noqa: E731
        log = train_network(
            net, len(ex), lambda net, rows: self._loss(objective, net, x_train, ex, rows), val_fn, params, self.seed,
            on_progress,
        )
        self.net_ = net
        self.fit_log_ = {"epochs": log.epochs, "best_epoch": log.best_epoch, "best_val_loss": log.best_val_loss,
                         "n_train_examples": len(ex)}
        return self

    # ------------------------------------------------------------------ using
    def predict(self, x: np.ndarray) -> np.ndarray:
        self._check_fitted()
        out = predict_net(self.net_, x)
        if get_objective(self.objective).regression:
            out = out * self.target_std_ + self.target_mean_
        return out

    def save(self, directory: Path) -> None:
        self._check_fitted()
        write_head_json(directory, self, self.class_name, dim=self.dim_, rating_mean=self.target_mean_,
                        rating_std=self.target_std_)
        save_file(state_to_numpy(self.net_), str(directory / "head.safetensors"))

    @classmethod
    def load(cls, directory: Path) -> TorchHead:
        config = read_head_json(directory)
        head = cls(**config["params"])
        head.dim_ = config["dim"]
        head.target_mean_, head.target_std_ = config["rating_mean"], config["rating_std"]
        head.fit_log_ = config.get("fit_log", {})
        head.net_ = build_net(head.dim_, head.hidden, head.dropout)
        load_numpy_state(head.net_, load_file(str(directory / "head.safetensors")))
        return head
