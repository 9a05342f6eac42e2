"""A reward with one output per objective (relevance, factuality, ...) over a shared trunk, scalarized into one number.

o(x) = W · h(x) + c gives K objective logits from a one-hidden-layer trunk h over the usual feature row; the reward is
r(x) = β · Σ_k w_k · o_k(x) with w on the simplex and β > 0, so every objective can only add to the reward in the
direction its labels point. The weights are either

- ``fixed``: one learned w for every prompt, or
- ``gated``: w = softmax(G(p)), a small MLP over the prompt's part of the feature row (``prompt_columns``), in the
  manner of ArmoRM (Wang et al. 2024): which objective matters depends on what was asked.

Training follows ArmoRM's two stages. (1) The trunk and the K outputs learn each objective from the labels that exist
for it (binary cross-entropy on log-odds, missing labels masked: a response labelled for one objective teaches that
output only). (2) With those frozen, the scalarization (w or G, and β) is fitted to the holistic preferences
(Bradley-Terry). Freezing keeps each output's meaning what its labels say, so "which objective decided" a comparison
is a statement about the labels, not about whatever the preference loss found convenient.

Without any objective labels (``fit(data)`` alone, as every generic tool calls it) the objectives are latent: stage 2
trains trunk, outputs and weights together on the preferences, an ordinary BT model with a K-factor bottleneck.
Objective labels reach the head as ``fit(data, labels=...)``: an (n_items, K) array aligned with ``data``'s rows, NaN
where missing (`rewardlab.rewards.objective_labels` builds it from `Rating` rows naming their objective).

``predict`` is the scalar reward, so evaluate, select, serve and ensembles use this head unchanged;
``predict_objectives`` the (n_rows, K) logits and ``predict_weights`` the (n_rows, K) weights β·w. Saved as head.json
(objective names, scalarization and prompt columns in ``params``) plus head.safetensors (trunk, outputs, gate).
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file
from torch import nn

from rewardlab.errors import ModelError
from rewardlab.rewards.base import FitProgress, HeadBase, head_params, read_head_json, register_head_class, write_head_json
from rewardlab.rewards.torch_training import (
    TrainParams,
    fit_device,
    load_numpy_state,
    module_device,
    one_thread,
    state_to_numpy,
    to_device,
    train_network,
)
from rewardlab.rewards.training_set import TrainingSet

SCALARIZATIONS = ("fixed", "gated")
DEFAULT_OBJECTIVES = ("relevance", "factuality", "completeness")


class Scalarizer(nn.Module):
    """β · w(p): ``fixed`` learns one w; ``gated`` maps the prompt columns to w with a small MLP. Both start uniform.

    The fixed logits and log β sit under ``label.`` so that training does not decay them (`train_network`)."""

    def __init__(self, k: int, scalarization: str, prompt_dim: int, gate_hidden: int) -> None:
        super().__init__()
        self.label = nn.ParameterDict({"log_scale": nn.Parameter(torch.zeros(())),
                                       "logits": nn.Parameter(torch.zeros(k))})
        self.gate: nn.Module | None = None
        if scalarization == "gated":
            out = nn.Linear(gate_hidden, k)
            nn.init.zeros_(out.weight)
            nn.init.zeros_(out.bias)
            self.gate = nn.Sequential(nn.Linear(prompt_dim, gate_hidden), nn.GELU(), out)

    def weights(self, prompt: torch.Tensor) -> torch.Tensor:
        """(n, K) β·w for each row's prompt columns."""
        logits = self.label["logits"].expand(len(prompt), -1)
        if self.gate is not None:
            logits = logits + self.gate(prompt)
        return torch.exp(self.label["log_scale"]) * torch.softmax(logits, dim=-1)

    def forward(self, objectives: torch.Tensor, prompt: torch.Tensor) -> torch.Tensor:
        return (self.weights(prompt) * objectives).sum(-1)


class MultiObjectiveNet(nn.Module):
    """Trunk + K objective logits (``objectives``) and their `Scalarizer`; ``forward`` is the scalar reward."""

    def __init__(self, dim: int, hidden: int, k: int, dropout: float, scalarization: str,
                 prompt_columns: tuple[int, int] | None, gate_hidden: int) -> None:
        super().__init__()
        self.objectives = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, k))
        self.columns = prompt_columns or (0, 0)
        self.scalarizer = Scalarizer(k, scalarization, self.columns[1] - self.columns[0], gate_hidden)

    def prompt(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, self.columns[0]:self.columns[1]]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scalarizer(self.objectives(x), self.prompt(x))


def _group_split(group: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """(n_items,) bool: the items of a random share ``fraction`` of the prompt groups (held out for early stopping)."""
    groups = np.unique(group)
    if fraction <= 0 or len(groups) < 2:
        return np.zeros(len(group), dtype=bool)
    n_val = min(len(groups) - 1, max(1, int(round(fraction * len(groups)))))
    held = np.random.default_rng(seed).choice(groups, size=n_val, replace=False)
    return np.isin(group, held)


@register_head_class
class MultiObjectiveHead(HeadBase):
    """K objective outputs over a shared trunk, scalarized by fixed or prompt-gated weights (module docstring).

    ``fit(data, device=...)`` fits both stages on a GPU as `rewards.torch_training` describes; the net stays there
    to predict (and `rescalarized` fits where it is)."""

    class_name: ClassVar[str] = "multi-objective"
    #: ``fit`` takes a ``device`` (`rewardlab.rewards.head_device.fit_head`)
    fits_on_device: ClassVar[bool] = True

    def __init__(self, objectives: Sequence[str] = DEFAULT_OBJECTIVES, scalarization: str = "fixed",
                 prompt_columns: Sequence[int] | None = None, hidden: int = 256, gate_hidden: int = 64,
                 dropout: float = 0.1, seed: int = 0, val_fraction: float = 0.1, lr: float = TrainParams.lr,
                 weight_decay: float = TrainParams.weight_decay, batch_size: int = TrainParams.batch_size,
                 max_epochs: int = TrainParams.max_epochs, patience: int = TrainParams.patience) -> None:
        self.objectives = objectives
        self.scalarization = scalarization
        self.prompt_columns = prompt_columns
        self.hidden = hidden
        self.gate_hidden = gate_hidden
        self.dropout = dropout
        self.seed = seed
        self.val_fraction = val_fraction
        self.lr = lr
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience

    # ------------------------------------------------------------------ checks
    @property
    def objective_names(self) -> list[str]:
        return [str(name) for name in self.objectives]

    def _columns(self, dim: int | None = None) -> tuple[int, int] | None:
        """The prompt columns as (start, stop), checked; None for fixed weights (no gate reads the prompt)."""
        if self.scalarization == "fixed":
            return None
        columns = self.prompt_columns
        if columns is None:
            raise ModelError("gated scalarization reads the prompt's columns of the feature row: give prompt_columns="
                             "[start, stop] (rewardlab.rewards.objective_labels.prompt_columns finds them for a "
                             "feature mode)")
        if (len(columns) != 2 or not all(isinstance(c, int) and not isinstance(c, bool) for c in columns)
                or not 0 <= columns[0] < columns[1] or (dim is not None and columns[1] > dim)):
            raise ModelError(f"prompt_columns must be [start, stop] with 0 <= start < stop <= {dim or 'dim'}, "
                             f"not {list(columns)!r}")
        return int(columns[0]), int(columns[1])

    def _check_params(self, dim: int | None = None) -> None:
        names = self.objective_names
        if not names or len(set(names)) != len(names) or not all(names):
            raise ModelError(f"objectives must be distinct non-empty names, not {names!r}")
        if self.scalarization not in SCALARIZATIONS:
            raise ModelError(f"unknown scalarization {self.scalarization!r}; known: {', '.join(SCALARIZATIONS)}")
        for name in ("hidden", "gate_hidden"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ModelError(f"a multi-objective head needs {name} >= 1, not {value!r}")
        self._columns(dim)

    def _new_net(self, dim: int) -> MultiObjectiveNet:
        return MultiObjectiveNet(dim, self.hidden, len(self.objective_names), self.dropout, self.scalarization,
                                 self._columns(dim), self.gate_hidden)

    def _params(self) -> TrainParams:
        return TrainParams(lr=self.lr, weight_decay=self.weight_decay, batch_size=self.batch_size,
                           max_epochs=self.max_epochs, patience=self.patience)

    def _labels(self, data: TrainingSet, labels: np.ndarray | None) -> np.ndarray | None:
        if labels is None:
            if len(data.rating_item):
                warnings.warn("a multi-objective head does not read plain ratings (they name no objective): its "
                              "objectives are learned as latent factors of the preferences; pass labels= to fit "
                              "(rewardlab.rewards.objective_labels)", stacklevel=3)
            return None
        labels = np.asarray(labels, dtype=np.float32)
        if labels.shape != (len(data.x), len(self.objective_names)):
            raise ModelError(f"objective labels must be (n_items, n_objectives) = ({len(data.x)}, "
                             f"{len(self.objective_names)}), got {labels.shape}")
        seen = labels[np.isfinite(labels)]
        if ((seen < 0) | (seen > 1)).any():
            raise ModelError("objective labels must lie in [0, 1] (NaN where missing)")
        return labels if np.isfinite(labels).any() else None

    # ------------------------------------------------------------------ fitting
    def fit(self, data: TrainingSet, on_progress: FitProgress | None = None,
            labels: np.ndarray | None = None, device: torch.device | str | None = None) -> MultiObjectiveHead:
        """Stage 1 on ``labels`` (if any), then the scalarization on ``data``'s preferences; see the module docstring.
        Fits on ``device`` (None: the CPU; a spec such as ``"cuda:0"`` or ``"auto"`` is resolved)."""
        where = fit_device(device)
        self._check_params(data.dim)
        torch.manual_seed(self.seed)
        target = self._labels(data, labels)
        held = _group_split(data.group, self.val_fraction, self.seed)
        net = self._new_net(data.dim).to(where)  # drawn on the CPU, then moved: the same start anywhere
        x = torch.from_numpy(np.ascontiguousarray(data.x, dtype=np.float32))
        log: dict[str, Any] = {"objectives": self.objective_names, "scalarization": self.scalarization}
        if target is None:
            log["objective_labels"] = 0
            log["preference"] = self._fit_preferences(net, lambda n, rows: n(to_device(x[rows], where)), data, held,
                                                      on_progress)
        else:
            log["objective_labels"] = {name: int(np.isfinite(target[:, k]).sum())
                                       for k, name in enumerate(self.objective_names)}
            log["objective_stage"] = self._fit_objectives(net, x, target, held, on_progress)
            log["preference"] = self._fit_scalarizer(net, x, data, held, on_progress)
        self.net_, self.dim_, self.fit_log_ = net, data.dim, log
        return self

    def _fit_objectives(self, net: MultiObjectiveNet, x: torch.Tensor, target: np.ndarray, held: np.ndarray,
                        on_progress: FitProgress | None) -> dict[str, Any]:
        """Masked BCE of each objective logit on its own labels; early stopping on held-out prompt groups."""
        labelled = np.isfinite(target).any(1)
        train_rows = torch.from_numpy(np.flatnonzero(labelled & ~held))
        val_rows = torch.from_numpy(np.flatnonzero(labelled & held))
        if not len(train_rows):
            raise ModelError("every objective label fell in the early-stopping share; lower val_fraction")
        y = torch.from_numpy(np.nan_to_num(target, nan=0.0))
        mask = torch.from_numpy(np.isfinite(target).astype(np.float32))
        device = module_device(net)

        def loss(module: nn.Module, rows: torch.Tensor) -> torch.Tensor:  # rows on the CPU; the batch is moved
            logits = module(to_device(x[rows], device))
            weight = to_device(mask[rows], device)
            losses = nn.functional.binary_cross_entropy_with_logits(logits, to_device(y[rows], device),
                                                                    reduction="none") * weight
            return losses.sum() / weight.sum().clamp_min(1.0)

        objectives = net.objectives
        val_fn = (lambda m: float(loss(m, val_rows))) if len(val_rows) else None
        with one_thread():
            result = train_network(objectives, len(train_rows), lambda m, idx: loss(m, train_rows[idx]), val_fn,
                                   self._params(), self.seed, on_progress)
        return {"epochs": result.epochs, "best_epoch": result.best_epoch, "best_val_loss": result.best_val_loss,
                "n_train_items": len(train_rows), "n_val_items": len(val_rows)}

    def _fit_scalarizer(self, net: MultiObjectiveNet, x: torch.Tensor, data: TrainingSet, held: np.ndarray,
                        on_progress: FitProgress | None) -> dict[str, Any]:
        """Stage 2: the objective outputs frozen (computed once, without dropout), only β and the weights learn."""
        net.eval()
        device = module_device(net)
        with torch.no_grad():
            rows = to_device(x, device)
            outputs, prompt = net.objectives(rows), net.prompt(rows)
        return self._fit_preferences(net.scalarizer, lambda s, items: s(outputs[to_device(items, device)],
                                                                        prompt[to_device(items, device)]),
                                     data, held, on_progress)

    def _fit_preferences(self, module: nn.Module, reward: Callable[[nn.Module, torch.Tensor], torch.Tensor],
                         data: TrainingSet, held: np.ndarray, on_progress: FitProgress | None) -> dict[str, Any]:
        """Weighted Bradley-Terry on ``data``'s pairs (ties as 0.5) of ``reward(module, item rows)``."""
        if not len(data.pair_a):
            raise ModelError("a multi-objective head learns its scalarization from comparisons; this data has none")
        in_val = held[data.pair_a] & held[data.pair_b]
        in_train = ~held[data.pair_a] & ~held[data.pair_b]
        a, b = torch.from_numpy(data.pair_a), torch.from_numpy(data.pair_b)
        target = torch.from_numpy(data.pair_target.astype(np.float32))
        weight = torch.from_numpy(data.pair_weights())
        train_pairs, val_pairs = torch.from_numpy(np.flatnonzero(in_train)), torch.from_numpy(np.flatnonzero(in_val))
        if not len(train_pairs):
            raise ModelError("no comparison lies wholly in the training share; lower val_fraction")

        def loss(m: nn.Module, pairs: torch.Tensor) -> torch.Tensor:  # pairs on the CPU; computed where the reward is
            margin = reward(m, a[pairs]) - reward(m, b[pairs])
            w = to_device(weight[pairs], margin.device)
            losses = nn.functional.binary_cross_entropy_with_logits(margin, to_device(target[pairs], margin.device),
                                                                    reduction="none")
            return (losses * w).sum() / w.sum().clamp_min(1e-12)

        val_fn = (lambda m: float(loss(m, val_pairs))) if len(val_pairs) else None
        with one_thread():  # small batches of small operations: a second thread adds only waits
            result = train_network(module, len(train_pairs), lambda m, idx: loss(m, train_pairs[idx]), val_fn,
                                   self._params(), self.seed + 1, on_progress)
        return {"epochs": result.epochs, "best_epoch": result.best_epoch, "best_val_loss": result.best_val_loss,
                "n_train_pairs": len(train_pairs), "n_val_pairs": len(val_pairs)}

    def rescalarized(self, data: TrainingSet, scalarization: str,
                     prompt_columns: Sequence[int] | None = None) -> MultiObjectiveHead:
        """A copy with the same (frozen) objective outputs and a new scalarization fitted on ``data``'s preferences:
        fixed and gated weights compared on identical objectives."""
        self._check_fitted()
        if not self.fit_log_.get("objective_labels"):
            raise ModelError("rescalarized() needs a head whose objectives were learned from labels")
        head = self.clone().set_params(scalarization=scalarization,
                                       prompt_columns=self.prompt_columns if prompt_columns is None else prompt_columns)
        head._check_params(data.dim)
        torch.manual_seed(head.seed)
        net = head._new_net(data.dim).to(module_device(self.net_))  # fitted where this head's net is
        net.objectives.load_state_dict(copy.deepcopy(self.net_.objectives.state_dict()))
        x = torch.from_numpy(np.ascontiguousarray(data.x, dtype=np.float32))
        held = _group_split(data.group, head.val_fraction, head.seed)
        log = {**self.fit_log_, "scalarization": scalarization,
               "preference": head._fit_scalarizer(net, x, data, held, None)}
        net.eval()
        head.net_, head.dim_, head.fit_log_ = net, data.dim, log
        return head

    # ------------------------------------------------------------------ using
    def move_to(self, device: torch.device | str) -> MultiObjectiveHead:
        """Predict on ``device`` from now on (a fitted head: a loaded one starts on the CPU); returns the head."""
        self._check_fitted()
        self.net_.to(fit_device(device))
        return self

    def _rows(self, x: np.ndarray) -> torch.Tensor:
        """``x`` checked, as a float32 tensor where the net is."""
        self._check_fitted()
        x = np.asarray(x)
        if x.ndim != 2 or x.shape[1] != self.dim_:
            raise ModelError(f"expected feature rows of width {self.dim_}, got shape {x.shape}")
        return to_device(np.ascontiguousarray(x, dtype=np.float32), module_device(self.net_))

    def predict(self, x: np.ndarray) -> np.ndarray:
        """The scalar reward β·Σ w_k o_k of each row."""
        with torch.no_grad():
            return self.net_(self._rows(x)).cpu().numpy().astype(np.float64)

    def predict_objectives(self, x: np.ndarray) -> np.ndarray:
        """(n_rows, K) objective logits, in `objective_names` order (log-odds of "no error of this kind")."""
        with torch.no_grad():
            return self.net_.objectives(self._rows(x)).cpu().numpy().astype(np.float64)

    def predict_weights(self, x: np.ndarray) -> np.ndarray:
        """(n_rows, K) the weights β·w each row's reward puts on the objectives (equal rows for fixed weights)."""
        with torch.no_grad():
            rows = self._rows(x)
            return self.net_.scalarizer.weights(self.net_.prompt(rows)).cpu().numpy().astype(np.float64)

    # ------------------------------------------------------------------ persistence
    def save(self, directory: Path) -> None:
        self._check_fitted()
        write_head_json(directory, self, self.class_name, dim=self.dim_)
        save_file(state_to_numpy(self.net_), str(directory / "head.safetensors"))

    def params(self) -> dict[str, Any]:
        """As saved in head.json: lists for the objective names and prompt columns (JSON has no tuples)."""
        params = self.get_params()
        params["objectives"] = self.objective_names
        if self.prompt_columns is not None:
            params["prompt_columns"] = [int(c) for c in self.prompt_columns]
        return params

    @classmethod
    def load(cls, directory: Path) -> MultiObjectiveHead:
        """The head saved in ``directory``, its weights checked against its parameters."""
        config = read_head_json(directory)
        head = cls(**head_params(config, directory))
        dim = config.get("dim")
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
            raise ModelError(f"{directory / 'head.json'}: 'dim' must be a positive integer, not {str(dim)[:50]!r}")
        head._check_params(dim)
        weights_path = directory / "head.safetensors"
        try:
            arrays = load_file(str(weights_path))
        except (SafetensorError, OSError, ValueError) as exc:
            raise ModelError(f"{weights_path}: cannot load the weights ({str(exc)[:200]})") from None
        net = head._new_net(dim)
        expected = {k: tuple(v.shape) for k, v in net.state_dict().items()}
        if {k: tuple(v.shape) for k, v in arrays.items()} != expected:
            raise ModelError(f"{weights_path}: the weights do not fit dim {dim}, hidden {head.hidden}, objectives "
                             f"{head.objective_names} and {head.scalarization} scalarization")
        if not all(np.isfinite(v).all() for v in arrays.values()):
            raise ModelError(f"{weights_path}: weights are not finite (NaN or inf); retrain the model")
        load_numpy_state(net, arrays)
        head.net_, head.dim_, head.fit_log_ = net, dim, config.get("fit_log", {})
        return head
