"""Linear and MLP reward heads trained with torch, for every objective."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file
from torch import nn

from rewardlab.errors import ModelError
from rewardlab.rewards.base import FitProgress, HeadBase, head_params, read_head_json, register_head_class, write_head_json
from rewardlab.rewards.length_debias import LengthAdjustedReward, length_features, log_length_scale
from rewardlab.rewards.likelihoods import LabelParams, Ordinal, get_label_model
from rewardlab.rewards.objectives import Examples, Objective, get_objective, split_for_early_stopping
from rewardlab.rewards.torch_training import (
    MLP_PATIENCE,
    NO_DECAY_PREFIX,
    TrainParams,
    build_net,
    fit_device,
    load_numpy_state,
    module_device,
    one_thread,
    predict_net,
    state_to_numpy,
    to_device,
    train_network,
)
from rewardlab.rewards.training_set import TrainingSet

#: full-batch Adam steps fitting the length term alone before a length-debiased fit
LENGTH_WARM_START_STEPS = 200

#: reward of a batch of item rows (indices into a training set's ``x``)
ItemReward = Callable[[torch.Tensor], torch.Tensor]


@register_head_class
class TorchHead(HeadBase):
    """A reward r(x) = net(x), fitted for one objective with early stopping on a prompt-split.

    ``hidden=0`` is a linear reward. Regression objectives train on standardised targets and map
    predictions back (``target_mean_``/``target_std_``, saved as ``rating_mean``/``rating_std``).

    Against a learned length preference (pairwise data): ``length_debias`` fits net(x) + g(length) and keeps only
    the net for scoring (see `rewards.length_debias`; g's weights are saved as ``length_effect``);
    ``balance_length`` weighs the pairs so that those the longer response wins and those the shorter one wins
    count the same (`TrainingSet.length_balance_weights`).

    Objectives with a label model (``davidson``, ``bt-strength``, ``plackett-luce``, ``ordinal``) train that
    likelihood's parameters with the net; `label_model_params` reports them, and they are saved beside the net's
    weights as ``label.*`` tensors. The reward stays r(x) (for ``ordinal``, `expected_rating` maps it back).

    ``patience`` None (the default) is `effective_patience`: 2 epochs for an MLP, 5 for a linear head.

    ``fit(data, device=...)`` fits on a GPU (see `rewards.torch_training`); the net stays there to predict, and is
    saved as CPU arrays. A label model's parameters and likelihood are there too (`rewards.likelihoods`).
    """

    class_name: ClassVar[str] = "torch"
    #: ``fit`` takes a ``device`` (`rewardlab.rewards.head_device.fit_head`)
    fits_on_device: ClassVar[bool] = True

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
        patience: int | None = None,
        length_debias: bool = False,
        balance_length: bool = False,
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
        self.length_debias = length_debias
        self.balance_length = balance_length

    def _train_params(self) -> TrainParams:
        return TrainParams(lr=self.lr, weight_decay=self.weight_decay, batch_size=self.batch_size,
                           max_epochs=self.max_epochs, patience=self.effective_patience())

    def effective_patience(self) -> int:
        """``patience`` as given, else the measured default for the net: `MLP_PATIENCE` for an MLP (``hidden > 0``),
        `TrainParams.patience` for a linear head."""
        if self.patience is not None:
            return self.patience
        return MLP_PATIENCE if self.hidden > 0 else TrainParams.patience

    # ------------------------------------------------------------------ fitting
    def _loss(self, objective: Objective, reward: ItemReward, ex: Examples, weight: torch.Tensor | None,
              rows: torch.Tensor | None, label: LabelParams | None = None) -> torch.Tensor:
        idx = torch.arange(len(ex)) if rows is None else rows  # item indices stay on the CPU, with the examples
        if objective.label_model is not None:
            if label is None:
                raise ModelError(f"objective {objective.name!r} needs its label model's parameters")
            losses = get_label_model(objective.label_model).losses(reward, ex, idx, label)
            return self._weighted_mean(losses, weight, idx)
        left = reward(torch.from_numpy(ex.left)[idx])
        target = to_device(torch.from_numpy(ex.target)[idx], left.device)  # the loss is computed where the reward is
        if objective.pairwise:
            if ex.right is None:
                raise ModelError(f"pairwise objective {objective.name!r} gave examples without right-hand items")
            right = reward(torch.from_numpy(ex.right)[idx])
            losses = nn.functional.binary_cross_entropy_with_logits(left - right, target, reduction="none")
        elif objective.regression:
            losses = nn.functional.mse_loss(left, (target - self.target_mean_) / self.target_std_, reduction="none")
        else:
            losses = nn.functional.binary_cross_entropy_with_logits(left, target, reduction="none")
        return self._weighted_mean(losses, weight, idx)

    @staticmethod
    def _weighted_mean(losses: torch.Tensor, weight: torch.Tensor | None, idx: torch.Tensor) -> torch.Tensor:
        if weight is None:
            return losses.mean()
        w = to_device(weight[idx], losses.device)
        return (losses * w).sum() / w.sum().clamp_min(1e-12)  # a batch of zero-weight pairs adds nothing

    def _check_length_options(self, objective: Objective, data: TrainingSet) -> None:
        if not (self.length_debias or self.balance_length):
            return
        if objective.label_model is not None:
            raise ModelError(f"length_debias and balance_length are not available with objective {objective.name!r} "
                             "(a label model with its own likelihood)")
        if objective.regression or not len(data.pair_a):
            raise ModelError(f"length_debias and balance_length apply to heads learning from comparisons; "
                             f"objective {objective.name!r} does not")
        if len(data.length) != data.n_items:
            raise ModelError("length_debias and balance_length need each response's length; this training set has none")

    def _example_weights(self, data: TrainingSet, ex: Examples) -> torch.Tensor | None:
        """Per-example weights of the pairs each example comes from, or None (all equal): the length balance
        (``balance_length``) times the training set's own pair weights (e.g. annotator reliability)."""
        if ex.lists is not None and len(data.pair_weight) and not np.all(data.pair_weight == 1):  # rankings
            raise ModelError(f"objective {self.objective!r} cannot weigh its examples by pair (annotator weights); "
                             "train it without --annotator-weights")
        if ex.source_pair is None or not (self.balance_length or len(data.pair_weight)):
            return None
        weights = data.pair_weights()
        if self.balance_length:
            weights = weights * data.length_balance_weights()
        return torch.from_numpy(weights[ex.source_pair])

    def _item_reward(self, net: nn.Module, data: TrainingSet, out: torch.device) -> ItemReward:
        """Reward of item rows of ``data`` (CPU indices) under ``net`` (q + g while training a length-debiased head),
        computed where ``net`` is and returned on ``out`` (where the loss is computed)."""
        device = module_device(net)

        def features(items: torch.Tensor) -> torch.Tensor:
            # only the batch's rows: a split reads them from its parent's matrix, a set with rows on demand makes them
            return to_device(data.rows_of(items.numpy()), device)

        if not self.length_debias:
            return lambda items: net(features(items)).squeeze(-1).to(out)
        length_inputs = torch.from_numpy(length_features(data.length, *self.length_scale_))
        return lambda items: net(features(items), to_device(length_inputs[items], device)).to(out)

    def _warm_start_length_term(self, net: LengthAdjustedReward, objective: Objective, data: TrainingSet,
                                ex: Examples) -> None:
        """Fit g alone first (the length-only explanation of the labels), so the joint fit starts with length
        already explained and q is not first to absorb it (early stopping would end the joint fit before a
        zero-initialised g caught up)."""
        device = module_device(net)
        length_inputs = to_device(length_features(data.length, *self.length_scale_), device)
        weight = self._example_weights(data, ex)
        optimizer = torch.optim.Adam(net.length.parameters(), lr=0.05)
        with one_thread():
            for _ in range(LENGTH_WARM_START_STEPS):
                optimizer.zero_grad()
                loss = self._loss(objective, lambda items: net.length(length_inputs[to_device(items, device)])
                                  .squeeze(-1), ex, weight, None)
                loss.backward()
                optimizer.step()

    def fit(self, data: TrainingSet, on_progress: FitProgress | None = None,
            device: torch.device | str | None = None) -> TorchHead:
        """Fit on ``data``, on ``device`` (None: the CPU; a spec such as ``"cuda:0"`` or ``"auto"`` is resolved)."""
        where = fit_device(device)
        objective = get_objective(self.objective)
        self._check_length_options(objective, data)
        params = self._train_params()
        torch.manual_seed(self.seed)
        split = split_for_early_stopping(self.objective, data, self.val_fraction, self.seed)
        ex = split.train_examples
        if ex.lists is not None:  # a ranking counts as its pairs in a batch, so a listwise head gets as many
            lengths = (ex.lists >= 0).sum(1)  # optimiser steps per epoch as the pairwise expansion would
            pairs = int((lengths * (lengths - 1) // 2).sum())
            params.batch_size = max(1, round(params.batch_size * len(ex) / max(pairs, 1)))
        self.target_mean_, self.target_std_ = 0.0, 1.0
        if objective.regression:
            self.target_mean_ = float(ex.target.mean())
            self.target_std_ = float(ex.target.std()) or 1.0
        self.dim_ = data.dim
        quality = build_net(data.dim, self.hidden, self.dropout)  # drawn on the CPU, then moved: the same start
        net: nn.Module = quality
        if self.length_debias:
            self.length_scale_ = log_length_scale(split.train.length)
            net = LengthAdjustedReward(quality)
        net.to(where)
        if isinstance(net, LengthAdjustedReward):
            self._warm_start_length_term(net, objective, split.train, ex)
        train_reward = self._item_reward(net, split.train, where)
        train_weight = self._example_weights(split.train, ex)
        label = None if objective.label_model is None else get_label_model(objective.label_model).make_params(ex)
        if label is not None:
            label.to(where)  # made on the CPU (from the examples), then moved like the net: its likelihood runs there
        trained: nn.Module = net if label is None else nn.ModuleDict({"reward": net, NO_DECAY_PREFIX[:-1]: label})
        val_fn = None
        if split.val is not None and split.val_examples is not None:
            ex_val = split.val_examples
            val_reward = self._item_reward(net, split.val, where)
            val_weight = self._example_weights(split.val, ex_val)
            val_fn = lambda net: float(self._loss(objective, val_reward, ex_val, val_weight, None, label))  # noqa: E731
        log = train_network(
            trained, len(ex), lambda net, rows: self._loss(objective, train_reward, ex, train_weight, rows, label),
            val_fn, params, self.seed, on_progress,
        )
        self.net_ = quality
        if label is not None:
            self.label_params_ = label
        self.fit_log_: dict[str, Any] = {"epochs": log.epochs, "best_epoch": log.best_epoch,
                                         "best_val_loss": log.best_val_loss, "n_train_examples": len(ex),
                                         "patience": params.patience}
        if label is not None:
            self.fit_log_["label_model"] = self.label_model_params()
        if isinstance(net, LengthAdjustedReward):
            self.fit_log_["length_effect"] = net.length_effect()
            self.fit_log_["log_length_mean_std"] = list(self.length_scale_)
        return self

    # ------------------------------------------------------------------ using
    def move_to(self, device: torch.device | str) -> TorchHead:
        """Predict on ``device`` from now on (a fitted head: a loaded one starts on the CPU); returns the head."""
        self._check_fitted()
        self.net_.to(fit_device(device))
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        self._check_fitted()
        out = predict_net(self.net_, x)
        if get_objective(self.objective).regression:
            out = out * self.target_std_ + self.target_mean_
        return out

    def label_model_params(self) -> dict[str, Any]:
        """The fitted label model's parameters for reports (tie parameter, cutpoints, thresholds ...); {} for
        objectives without one."""
        self._check_fitted()
        objective = get_objective(self.objective)
        label = getattr(self, "label_params_", None)
        if objective.label_model is None or label is None:
            return {}
        return get_label_model(objective.label_model).describe(label)

    def expected_rating(self, x: np.ndarray) -> np.ndarray:
        """E[rating] of each row under an ``ordinal`` head, on the ratings' scale (the reward itself is `predict`)."""
        self._check_fitted()
        model = get_label_model(get_objective(self.objective).label_model or "")
        if not isinstance(model, Ordinal):
            raise ModelError(f"expected ratings come from an ordinal head, not objective {self.objective!r}")
        return model.expected_rating(self.label_params_, predict_net(self.net_, x))

    def save(self, directory: Path) -> None:
        self._check_fitted()
        write_head_json(directory, self, self.class_name, dim=self.dim_, rating_mean=self.target_mean_,
                        rating_std=self.target_std_)
        arrays = state_to_numpy(self.net_)
        label = getattr(self, "label_params_", None)
        if label is not None:
            arrays |= {NO_DECAY_PREFIX + k: v for k, v in label.arrays().items()}
        save_file(arrays, str(directory / "head.safetensors"))

    @classmethod
    def load(cls, directory: Path) -> TorchHead:
        """The head saved in ``directory``. The weights file is read first and the net is built only once its
        shapes match ``dim``/``hidden`` (so absurd dims in head.json fail at once instead of allocating), and
        weights that are not finite are refused: they would score everything NaN."""
        config = read_head_json(directory)
        params = head_params(config, directory)
        head = cls(**params)
        get_objective(head.objective)  # a damaged head.json fails here, not at the first prediction
        head.dim_ = config["dim"]
        head.target_mean_, head.target_std_ = config["rating_mean"], config["rating_std"]
        head.fit_log_ = config.get("fit_log", {})
        weights_path = directory / "head.safetensors"
        try:
            arrays = load_file(str(weights_path))
        except (SafetensorError, OSError, ValueError) as exc:  # truncated, garbage, or missing
            raise ModelError(f"{weights_path}: cannot load the weights ({str(exc)[:200]})") from None
        sizes: list[tuple[str, Any]] = [("dim", head.dim_), ("params.hidden", head.hidden)]
        for name, value in sizes:
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ModelError(f"{directory / 'head.json'}: '{name}' must be a non-negative integer, "
                                 f"not {str(value)[:50]!r}")
        numbers: list[tuple[str, Any]] = [("rating_mean", head.target_mean_), ("rating_std", head.target_std_),
                                          ("params.dropout", head.dropout)]
        for name, value in numbers:
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise ModelError(f"{directory / 'head.json'}: '{name}' must be a finite number, not {str(value)[:50]!r}")
        with torch.device("meta"):  # shapes only: nothing is allocated
            expected = {k: tuple(v.shape) for k, v in build_net(head.dim_, head.hidden, head.dropout).state_dict().items()}
        label_arrays = {k.removeprefix(NO_DECAY_PREFIX): v for k, v in arrays.items() if k.startswith(NO_DECAY_PREFIX)}
        arrays = {k: v for k, v in arrays.items() if not k.startswith(NO_DECAY_PREFIX)}
        label_model = get_objective(head.objective).label_model
        if label_arrays and label_model is None:
            raise ModelError(f"{weights_path}: label model parameters (label.*) for objective {head.objective!r}, "
                             "which has no label model")
        found = {k: tuple(v.shape) for k, v in arrays.items()}
        if found != expected:
            raise ModelError(f"{weights_path}: the weights ({_shapes(found)}) do not fit the net head.json describes "
                             f"(dim {head.dim_}, hidden {head.hidden}: {_shapes(expected)})")
        bad = [k for k, v in arrays.items() if not np.issubdtype(v.dtype, np.floating) or not np.isfinite(v).all()]
        bad += [NO_DECAY_PREFIX + k for k, v in label_arrays.items()  # a rating scale may be NaN: "none"
                if not np.issubdtype(v.dtype, np.floating)
                or not np.isfinite(v[~np.isnan(v)] if k.endswith("scale") else v).all()]
        if bad:
            raise ModelError(f"{weights_path}: weights {', '.join(bad)} are not finite floats (NaN or inf); every "
                             "reward would be NaN — retrain the model")
        head.net_ = build_net(head.dim_, head.hidden, head.dropout)
        load_numpy_state(head.net_, arrays)
        if label_model is not None:
            head.label_params_ = LabelParams(label_arrays)
            try:  # every parameter the label model reads is there, with a usable shape
                get_label_model(label_model).describe(head.label_params_)
            except (AttributeError, RuntimeError, IndexError, ValueError, TypeError) as exc:
                raise ModelError(f"{weights_path}: the {label_model!r} label model's parameters are damaged "
                                 f"({type(exc).__name__}: {str(exc)[:200]})") from None
        return head


def _shapes(shapes: dict[str, tuple[int, ...]]) -> str:
    return ", ".join(f"{k} {'x'.join(map(str, v))}" for k, v in sorted(shapes.items())) or "none"
