"""A reward conditioned on who is asked: a shared trunk plus a learned embedding per annotator.

r(x, a) = (v + e_a) · h(x) + b, with h a one-hidden-layer trunk over the features shared by everyone, v the
population's direction and e_a annotator a's offset from it. Each pair trains with the reward of the annotator who
labelled it, so disagreement between people is modelled instead of averaged away as noise.

The population is the "unknown" token (index 0): during training a share ``annotator_dropout`` of the pairs have
their annotator replaced by it (annotator dropout), and pairs without an annotator id always use it. The unknown
token's reward is therefore the model of a labeller drawn from the training population, and it is what ``predict``
returns, so every command that knows only rewards (evaluate, select, serve, ensembles) uses this head unchanged.
An annotator not seen in training is scored with that population reward (with an `UnknownAnnotatorWarning`).

The vocabulary (annotator ids, in embedding order) is saved as ``annotators.json`` beside the weights, inside the
head directory, so the model's SHA-256 digests cover it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file
from torch import nn

from rewardlab.errors import ModelError
from rewardlab.rewards.annotator_aware import (
    VOCABULARY_FILE,
    AnnotatorAware,
    read_vocabulary,
)
from rewardlab.rewards.base import FitProgress, HeadBase, head_params, read_head_json, register_head_class, write_head_json
from rewardlab.rewards.objectives import Examples, split_for_early_stopping
from rewardlab.rewards.torch_training import (
    TrainParams,
    fit_device,
    load_numpy_state,
    module_device,
    state_to_numpy,
    to_device,
    train_network,
)
from rewardlab.rewards.training_set import TrainingSet


class AnnotatorNet(nn.Module):
    """r(x, a) = (v + e_a) · h(x) + b; annotator 0 is the unknown/population token (its e is learned too)."""

    def __init__(self, dim: int, hidden: int, n_annotators: int, dropout: float) -> None:
        super().__init__()
        self.trunk = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout))
        self.base = nn.Linear(hidden, 1)
        self.embed = nn.Embedding(n_annotators + 1, hidden)
        nn.init.zeros_(self.embed.weight)  # start from one shared reward; offsets grow only where labels disagree

    def forward(self, x: torch.Tensor, who: torch.Tensor) -> torch.Tensor:
        h = self.trunk(x)
        return self.base(h).squeeze(-1) + (h * self.embed(who)).sum(-1)

    def all_annotators(self, x: torch.Tensor) -> torch.Tensor:
        """(n_annotators + 1, n_rows): every token's reward of every row (row 0: the population)."""
        h = self.trunk(x)
        return self.base(h).squeeze(-1)[None, :] + self.embed.weight @ h.T


@register_head_class
class AnnotatorHead(HeadBase, AnnotatorAware):
    """Annotator-conditioned Bradley-Terry head (see the module docstring); ``predict`` is the population reward.

    ``fit(data, device=...)`` fits on a GPU as `rewards.torch_training` describes (annotator dropout is drawn on the
    CPU, so a CPU fit is unchanged); the net stays there to predict."""

    class_name: ClassVar[str] = "annotator"
    #: ``fit`` takes a ``device`` (`rewardlab.rewards.head_device.fit_head`)
    fits_on_device: ClassVar[bool] = True

    def __init__(self, hidden: int = 256, dropout: float = 0.1, annotator_dropout: float = 0.2, seed: int = 0,
                 val_fraction: float = 0.1, lr: float = TrainParams.lr, weight_decay: float = TrainParams.weight_decay,
                 batch_size: int = TrainParams.batch_size, max_epochs: int = TrainParams.max_epochs,
                 patience: int = TrainParams.patience) -> None:
        self.hidden = hidden
        self.dropout = dropout
        self.annotator_dropout = annotator_dropout
        self.seed = seed
        self.val_fraction = val_fraction
        self.lr = lr
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience

    # ------------------------------------------------------------------ fitting
    def _check_params(self) -> None:
        if isinstance(self.hidden, bool) or not isinstance(self.hidden, int) or self.hidden < 1:
            raise ModelError(f"an annotator head needs hidden >= 1 (a trunk to share), not {self.hidden!r}")
        if not 0.0 <= self.annotator_dropout < 1.0:
            raise ModelError(f"annotator_dropout must be in [0, 1), not {self.annotator_dropout!r}: it is the share "
                             "of pairs that teach the population (unknown-annotator) reward")

    def _pair_tokens(self, data: TrainingSet) -> np.ndarray:
        """(n_pairs,) each pair's annotator token: its index in the vocabulary + 1, or 0 (unknown/none)."""
        index = {a: i + 1 for i, a in enumerate(self.annotators_)}
        names = data.pair_annotator if len(data.pair_annotator) == len(data.pair_a) else [""] * len(data.pair_a)
        return np.array([index.get(str(a), 0) for a in names], dtype=np.int64)

    def _loss_fn(self, data: TrainingSet, ex: Examples, drop: float, generator: torch.Generator | None,
                 device: torch.device) -> Callable[[nn.Module, torch.Tensor | None], torch.Tensor]:
        """The weighted BT loss of a batch of ``ex``, each pair scored by its annotator's reward (a share ``drop``
        of them, redrawn every batch, by the population's), computed on ``device`` (the batch is gathered on the
        CPU and moved)."""
        x = torch.from_numpy(data.x)
        assert ex.right is not None and ex.source_pair is not None
        left, right = torch.from_numpy(ex.left), torch.from_numpy(ex.right)
        target = torch.from_numpy(ex.target)
        tokens = torch.from_numpy(self._pair_tokens(data)[ex.source_pair])
        weight = torch.from_numpy(data.pair_weights()[ex.source_pair])

        def loss(net: nn.Module, rows: torch.Tensor | None) -> torch.Tensor:
            idx = torch.arange(len(ex)) if rows is None else rows
            who = tokens[idx]
            if drop > 0:
                who = torch.where(torch.rand(len(idx), generator=generator) < drop, torch.zeros_like(who), who)
            who = to_device(who, device)
            margin = net(to_device(x[left[idx]], device), who) - net(to_device(x[right[idx]], device), who)
            losses = nn.functional.binary_cross_entropy_with_logits(margin, to_device(target[idx], device),
                                                                    reduction="none")
            w = to_device(weight[idx], device)
            return (losses * w).sum() / w.sum().clamp_min(1e-12)

        return loss

    def fit(self, data: TrainingSet, on_progress: FitProgress | None = None,
            device: torch.device | str | None = None) -> AnnotatorHead:
        """Fit on ``data``, on ``device`` (None: the CPU; a spec such as ``"cuda:0"`` or ``"auto"`` is resolved)."""
        where = fit_device(device)
        self._check_params()
        torch.manual_seed(self.seed)
        split = split_for_early_stopping("bt", data, self.val_fraction, self.seed)
        names = split.train.pair_annotator if len(split.train.pair_annotator) else np.zeros(0, dtype=str)
        self.annotators_: list[str] = sorted({str(a) for a in names if str(a)})
        self.dim_ = data.dim
        net = AnnotatorNet(data.dim, self.hidden, len(self.annotators_), self.dropout).to(where)  # drawn on the CPU
        generator = torch.Generator().manual_seed(self.seed + 1)
        train_loss = self._loss_fn(split.train, split.train_examples, self.annotator_dropout, generator, where)
        val_fn = None
        if split.val is not None and split.val_examples is not None:
            val_loss = self._loss_fn(split.val, split.val_examples, 0.0, None, where)
            val_fn = lambda net: float(val_loss(net, None))  # noqa: E731
        params = TrainParams(lr=self.lr, weight_decay=self.weight_decay, batch_size=self.batch_size,
                             max_epochs=self.max_epochs, patience=self.patience)
        log = train_network(net, len(split.train_examples), train_loss, val_fn, params, self.seed, on_progress)
        self.net_ = net
        self.fit_log_: dict[str, Any] = {"epochs": log.epochs, "best_epoch": log.best_epoch,
                                         "best_val_loss": log.best_val_loss,
                                         "n_train_examples": len(split.train_examples),
                                         "n_annotators": len(self.annotators_)}
        return self

    # ------------------------------------------------------------------ using
    def move_to(self, device: torch.device | str) -> AnnotatorHead:
        """Predict on ``device`` from now on (a fitted head: a loaded one starts on the CPU); returns the head."""
        self._check_fitted()
        self.net_.to(fit_device(device))
        return self

    def _rewards(self, x: np.ndarray) -> np.ndarray:
        """(n_annotators + 1, n_rows) rewards, computed where the net is; row 0 is the population."""
        self._check_fitted()
        with torch.no_grad():
            rows = to_device(np.ascontiguousarray(x, dtype=np.float32), module_device(self.net_))
            return self.net_.all_annotators(rows).cpu().numpy().astype(np.float64)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """The population reward (the unknown-annotator token)."""
        return self._rewards(x)[0]

    def predict_annotators(self, x: np.ndarray) -> np.ndarray:
        """(n_known_annotators, n_rows): every known annotator's reward, in `annotators` order."""
        rewards = self._rewards(x)[1:]
        if not len(rewards):
            raise ModelError("this annotator head was trained without annotator ids: it knows only the population")
        return rewards

    def prob_prefers(self, x_a: np.ndarray, x_b: np.ndarray) -> np.ndarray:
        """P(a random known annotator prefers a over b), per row: the mean over annotators of σ(r_k(a) − r_k(b))."""
        diff = self.predict_annotators(x_a) - self.predict_annotators(x_b)
        return np.asarray((1.0 / (1.0 + np.exp(-diff))).mean(0))

    # ------------------------------------------------------------------ persistence
    def save(self, directory: Path) -> None:
        self._check_fitted()
        write_head_json(directory, self, self.class_name, dim=self.dim_)
        self.save_vocabulary(directory)
        save_file(state_to_numpy(self.net_), str(directory / "head.safetensors"))

    @classmethod
    def load(cls, directory: Path) -> AnnotatorHead:
        """The head saved in ``directory``: parameters, vocabulary and weights, checked against one another."""
        config = read_head_json(directory)
        params = head_params(config, directory)
        head = cls(**params)
        head._check_params()
        dim = config.get("dim")
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
            raise ModelError(f"{directory / 'head.json'}: 'dim' must be a positive integer, not {str(dim)[:50]!r}")
        vocabulary = read_vocabulary(directory)
        weights_path = directory / "head.safetensors"
        try:
            arrays = load_file(str(weights_path))
        except (SafetensorError, OSError, ValueError) as exc:
            raise ModelError(f"{weights_path}: cannot load the weights ({str(exc)[:200]})") from None
        with torch.device("meta"):
            expected = {k: tuple(v.shape) for k, v in
                        AnnotatorNet(dim, head.hidden, len(vocabulary), head.dropout).state_dict().items()}
        found = {k: tuple(v.shape) for k, v in arrays.items()}
        if found != expected:
            raise ModelError(f"{weights_path}: the weights do not fit dim {dim}, hidden {head.hidden} and "
                             f"{len(vocabulary)} annotators ({directory / VOCABULARY_FILE})")
        if not all(np.isfinite(v).all() for v in arrays.values()):
            raise ModelError(f"{weights_path}: weights are not finite (NaN or inf); retrain the model")
        head.dim_, head.annotators_ = dim, list(vocabulary)
        head.fit_log_ = config.get("fit_log", {})
        head.net_ = AnnotatorNet(dim, head.hidden, len(vocabulary), head.dropout)
        load_numpy_state(head.net_, arrays)
        return head

