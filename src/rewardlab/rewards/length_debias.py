"""Length-debiased training: fit reward = q(x) + g(length) jointly, then score with q alone.

Annotators (human or LLM) tend to prefer longer answers whatever their quality, so a reward fitted to their
labels learns "longer is better" as readily as "better is better". Giving the model an explicit, cheap channel
for length, g, lets the labels' length preference be explained there; q, the part kept for scoring, is left to
explain what length cannot. This is the disentangled reward of ODIN (Chen et al. 2024) and the idea behind
AlpacaEval 2's length-controlled regression (Dubois et al. 2024), where the length term is fitted and then
dropped. g sees a standardised log-length and its square, so it can express "longer wins, up to a point".
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

#: g's inputs per response: standardised log(1 + characters) and its square
N_LENGTH_FEATURES = 2


def length_features(length: np.ndarray, mean: float, std: float) -> np.ndarray:
    """(n, 2) float32 inputs of g: z = (log(1 + length) − mean) / std, and z²."""
    z = (np.log1p(np.asarray(length, dtype=np.float64)) - mean) / std
    return np.stack([z, z * z], axis=1).astype(np.float32)


def log_length_scale(length: np.ndarray) -> tuple[float, float]:
    """Mean and standard deviation of log(1 + length) over the training responses (std 1 when all are equal)."""
    log_length = np.log1p(np.asarray(length, dtype=np.float64))
    return float(log_length.mean()), float(log_length.std()) or 1.0


class LengthAdjustedReward(nn.Module):
    """The training-time reward q(x) + g(length features); ``quality`` is q, the network kept for scoring."""

    def __init__(self, quality: nn.Module) -> None:
        super().__init__()
        self.quality = quality
        self.length = nn.Linear(N_LENGTH_FEATURES, 1, bias=False)
        nn.init.zeros_(self.length.weight)

    def forward(self, x: torch.Tensor, length_inputs: torch.Tensor) -> torch.Tensor:
        return self.quality(x).squeeze(-1) + self.length(length_inputs).squeeze(-1)

    def length_effect(self) -> list[float]:
        """g's weights on (z, z²): the first is the reward per standard deviation of log-length."""
        return [float(w) for w in self.length.weight.detach().reshape(-1)]
