"""Small torch networks and the one training loop every torch head shares (early stopping included).

Where a head fits (``--device``): the head builds its net on the CPU (so its initial weights are the CPU's random
draws whatever the device) and moves it to the device; `train_network` draws the batch order on the CPU with its own
generator, and each head's loss gathers its batch's rows on the CPU and moves them (`to_device`). So a CPU fit is
the fit it always was, and a GPU fit sees the same batches in the same order. Weights leave as CPU numpy arrays
(`state_to_numpy`) and scores as float64 numpy (`predict_net`), wherever the net is.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from rewardlab.embed.devices import resolve_device

#: parameters whose names start with this are not decayed (see `train_network`)
NO_DECAY_PREFIX = "label."

#: batch loss: (network, batch index tensor) -> scalar loss
BatchLoss = Callable[[nn.Module, torch.Tensor], torch.Tensor]


@contextmanager
def one_thread() -> Iterator[None]:
    """torch on one thread inside the block, for loops of tiny operations: a second intra-op thread has nothing to
    share there but the wait for it (200 Adam steps on a 2-weight term took 0.24 s on one thread and 0.7–1.7 s on two,
    on 2 cores, with the same result)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


#: where a head fits when no device is given: the CPU (the CLI's ``--device`` defaults to auto instead)
CPU = torch.device("cpu")


def fit_device(device: torch.device | str | None) -> torch.device:
    """The ``torch.device`` a head fits on: None is the CPU; a spec (auto, cpu, cuda, cuda:N) is resolved by
    `rewardlab.embed.devices.resolve_device`, so a GPU that is not here is one clear `InvalidValueError`."""
    if device is None:
        return CPU
    return device if isinstance(device, torch.device) else resolve_device(device)


def module_device(net: nn.Module) -> torch.device:
    """Where ``net``'s parameters live (the CPU for a net without any)."""
    return next((p.device for p in net.parameters()), CPU)


def to_device(array: np.ndarray | torch.Tensor, device: torch.device) -> torch.Tensor:
    """``array`` as a tensor on ``device``; on the CPU the same tensor (a numpy array: one sharing its memory)."""
    tensor = torch.from_numpy(array) if isinstance(array, np.ndarray) else array
    return tensor.to(device)


def build_net(dim: int, hidden: int, dropout: float) -> nn.Module:
    """``hidden == 0`` is a linear reward; otherwise a one-hidden-layer MLP."""
    if hidden <= 0:
        return nn.Linear(dim, 1)
    return nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, 1))


@dataclass
class TrainParams:
    lr: float = 3e-3
    weight_decay: float = 1e-2
    batch_size: int = 256
    max_epochs: int = 200
    #: epochs without a better validation loss before a fit stops (it keeps the best epoch's weights)
    patience: int = 5


#: the patience of an MLP reward head (`rewardlab.rewards.torch_head.TorchHead` with ``hidden > 0``), measured on
#: the recipe study's four sets (`benchmarks/patience_transfer.py`, 2 against 5). bt-mlp, bt-mlp-debiased and clf-mlp
#: with seeds 0-2: every model and score the same, a third fewer epochs. bt-mlp with seeds 3-7: the models trained
#: on vicuna80-reviews changed, Δ accuracy −0.005 to +0.002 with every CI including 0; the rest were the same. No
#: loss shown, fit time −32%. Linear heads keep `TrainParams.patience`: they use many more epochs, so the saving is
#: small, and their models changed on 1 of the 4 sets (Δ −0.005 to +0.001, CIs including 0).
MLP_PATIENCE = 2


@dataclass
class TrainLog:
    epochs: int
    best_epoch: int
    best_val_loss: float | None


def train_network(
    net: nn.Module,
    n_train: int,
    train_loss: BatchLoss,
    val_loss: Callable[[nn.Module], float] | None,
    params: TrainParams,
    seed: int,
    on_epoch: Callable[[int, int], None] | None = None,
) -> TrainLog:
    """Minibatch AdamW over ``n_train`` examples; keeps the weights of the best validation epoch.

    Parameters under ``label.`` (a label model's tie parameter or thresholds) get no weight decay: shrinking them
    towards 0 would bias the likelihood itself, not regularise the reward."""
    generator = torch.Generator().manual_seed(seed)
    named = list(net.named_parameters())
    decayed = [p for name, p in named if not name.startswith(NO_DECAY_PREFIX)]
    kept = [p for name, p in named if name.startswith(NO_DECAY_PREFIX)]
    groups = [{"params": decayed}] + ([{"params": kept, "weight_decay": 0.0}] if kept else [])
    optimizer = torch.optim.AdamW(groups, lr=params.lr, weight_decay=params.weight_decay)
    best_state = copy.deepcopy(net.state_dict())
    best_loss = float("inf")
    best_epoch = 0
    epoch = 0
    for epoch in range(1, params.max_epochs + 1):
        net.train()
        order = torch.randperm(n_train, generator=generator)
        for start in range(0, n_train, params.batch_size):
            optimizer.zero_grad()
            loss = train_loss(net, order[start : start + params.batch_size])
            loss.backward()
            optimizer.step()
        if on_epoch is not None:
            on_epoch(epoch, params.max_epochs)
        if val_loss is None:
            continue
        net.eval()
        with torch.no_grad():
            current = val_loss(net)
        if current < best_loss - 1e-6:
            best_loss, best_epoch = current, epoch
            best_state = copy.deepcopy(net.state_dict())
        elif epoch - best_epoch >= params.patience:
            break
    if val_loss is not None:
        net.load_state_dict(best_state)
    if on_epoch is not None:
        on_epoch(params.max_epochs, params.max_epochs)  # done (early stopping may end before the last epoch)
    net.eval()
    return TrainLog(epoch, best_epoch if val_loss is not None else epoch, best_loss if val_loss is not None else None)


def predict_net(net: nn.Module, x: np.ndarray) -> np.ndarray:
    """The net's outputs for the rows of ``x`` as a float64 vector, computed without gradients where the net is."""
    rows = to_device(np.ascontiguousarray(x, dtype=np.float32), module_device(net))
    with torch.no_grad():
        return net(rows).squeeze(-1).cpu().numpy().astype(np.float64)


def state_to_numpy(net: nn.Module) -> dict[str, np.ndarray]:
    """The net's weights as numpy arrays by parameter name, for saving as safetensors."""
    return {k: v.detach().cpu().numpy() for k, v in net.state_dict().items()}


def load_numpy_state(net: nn.Module, arrays: dict[str, np.ndarray]) -> None:
    """Saved weights into ``net`` (wherever it is: a saved model never names the device it was fitted on)."""
    net.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in arrays.items()})
    net.eval()
