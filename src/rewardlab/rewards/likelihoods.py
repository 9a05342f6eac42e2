"""Label models: the likelihood of each kind of human label given the rewards, with their own learned parameters.

Bradley-Terry reads a tie as "half a win each way" and a ranking as all its pairs; these read the labels as
what they are (each is an objective in `rewardlab.rewards.objectives`, fitted by `TorchHead`):

- ``davidson`` (Davidson 1970): P(a) ∝ e^{Δ/2}, P(tie) ∝ ν, P(b) ∝ e^{−Δ/2} with Δ = r(a) − r(b); one learned
  ν ≥ 0, so P(tie) is modelled (largest, ν/(2+ν), between equal rewards) instead of trained as a ½ target.
- ``graded`` (strength-weighted comparisons): an ordered logit on Δ. The signed strength (b much better ... tie
  ... a much better) is an ordinal outcome of Δ + logistic noise, cut by learned symmetric cutpoints; a tie is the
  band |Δ + ε| ≤ τ (Rao & Kupper 1967), and a comparison without a strength is censored to "a won" (any
  strength). Strength enters the likelihood, not a weight: a weight would say a weak preference is *less
  evidence* of the same thing, while it is evidence of a *smaller* difference; and the cutpoints are learned, so
  the strength scale need not be a calibrated probability. Without strengths or ties it is Bradley-Terry.
- ``plackett-luce`` (Plackett 1975, Luce 1959): a ranking is chosen best first, each pick a softmax of the rewards
  left; listwise, so an n-item ranking is one observation and not n(n−1)/2 pairs that look independent.
- ``ordinal`` (cumulative link, McCullagh 1980): rating level k when r + ε falls between learned thresholds
  θ_{k−1} < θ_k; one reward scale for every item, and `expected_rating` maps a reward back to the rating scale.

Extra parameters live in a `LabelParams` module; they are trained with the net (no weight decay: they are not
weights of the reward) and saved beside it as ``label.<name>`` tensors.

Where a likelihood is computed (``--device``): where the rewards and the parameters are. The head moves its
`LabelParams` with its net; ``losses`` takes item indices on the CPU (the reward gathers their rows) and moves what
it reads off the examples (outcomes, levels, masks) to the rewards' device, so on the CPU every move is a no-op and
the loss is the one it always was. The fixed levels are also kept as the numpy arrays they were made from
(`LabelParams.fixed`), so finding a label's level never copies from the device; reports copy parameters out.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from rewardlab.errors import ModelError
from rewardlab.registry import Registry
from rewardlab.rewards.objectives import Examples

#: stands in for ±infinity on the latent scale (finite, so no inf − inf reaches a gradient)
BIG = 1e4
#: a rating with more distinct values than this is binned into this many quantile levels
MAX_ORDINAL_LEVELS = 20
#: comparison strengths with more distinct values than this are binned into this many quantile levels
MAX_STRENGTH_LEVELS = 5
#: prefix of a buffer (fixed by the data, not trained) among a `LabelParams`' tensors
FIXED = "fixed_"

ItemReward = Callable[[torch.Tensor], torch.Tensor]


class LabelParams(nn.Module):
    """A label model's parameters (trained) and fixed arrays (``fixed_*``: levels read off the training data)."""

    def __init__(self, arrays: dict[str, np.ndarray]) -> None:
        super().__init__()
        #: the fixed arrays as float32 numpy, wherever the module is moved (they never change)
        self.fixed_arrays: dict[str, np.ndarray] = {}
        for name, value in arrays.items():
            tensor = torch.tensor(np.asarray(value, dtype=np.float32))
            if name.startswith(FIXED):
                self.register_buffer(name, tensor)
                self.fixed_arrays[name] = tensor.numpy().copy()
            else:
                self.register_parameter(name, nn.Parameter(tensor))

    def get(self, name: str) -> torch.Tensor:
        value = getattr(self, name)
        assert isinstance(value, torch.Tensor)
        return value

    def fixed(self, name: str) -> np.ndarray:
        """The fixed array ``fixed_<name>`` as float32 numpy (no copy from the device); an `AttributeError`, as for a
        missing parameter, when there is none."""
        if FIXED + name not in self.fixed_arrays:
            raise AttributeError(f"label model parameters have no {FIXED + name!r}")
        return self.fixed_arrays[FIXED + name]

    def arrays(self) -> dict[str, np.ndarray]:
        return {k: v.detach().cpu().numpy() for k, v in self.state_dict().items()}


def log_interval_probability(lower: torch.Tensor, upper: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """log P(lower < shift + ε ≤ upper) for standard logistic ε, computed as
    log σ(b) + log σ(−a) + log(1 − e^{a−b}) (a = lower − shift, b = upper − shift), which stays finite in the tails."""
    a, b = lower - shift, upper - shift
    gap = (a - b).clamp(max=-1e-6)
    return nn.functional.logsigmoid(b) + nn.functional.logsigmoid(-a) + torch.log1p(-torch.exp(gap))


def increasing(first: torch.Tensor, raw_steps: torch.Tensor) -> torch.Tensor:
    """first, first + softplus(s_1), ...: ordered cutpoints from unconstrained parameters."""
    return torch.cat([first.reshape(1), first + torch.cumsum(nn.functional.softplus(raw_steps), 0)])


def _inverse_softplus(y: np.ndarray) -> np.ndarray:
    y = np.maximum(np.asarray(y, dtype=np.float64), 1e-4)
    return y + np.log(-np.expm1(-y))


def level_edges(values: np.ndarray, max_levels: int) -> tuple[np.ndarray, np.ndarray]:
    """(edges, level values): the distinct ``values`` as levels (edges at midpoints), or ``max_levels`` quantile
    bins (each level's value its bin's mean) when there are more. `np.searchsorted(edges, v, "right")` is v's level."""
    distinct = np.unique(values)
    if len(distinct) <= max_levels:
        return (distinct[1:] + distinct[:-1]) / 2, distinct
    edges = np.unique(np.quantile(values, np.linspace(0, 1, max_levels + 1)[1:-1]))
    level = np.searchsorted(edges, values, side="right")
    return edges, np.array([values[level == k].mean() for k in range(len(edges) + 1)])


class LabelModel(ABC):
    """A likelihood of labels given rewards: its parameters from training examples, and per-example −log-likelihood."""

    name: ClassVar[str]

    @abstractmethod
    def make_params(self, ex: Examples) -> LabelParams:
        """Fresh parameters (and fixed levels) for training on ``ex``."""

    @abstractmethod
    def losses(self, reward: ItemReward, ex: Examples, rows: torch.Tensor, params: LabelParams) -> torch.Tensor:
        """−log P(label) of examples ``rows`` of ``ex``."""

    @abstractmethod
    def describe(self, params: LabelParams) -> dict[str, Any]:
        """The fitted parameters in the units a report shows (JSON-ready)."""


LABEL_MODELS: Registry[LabelModel] = Registry("label model", ModelError)


def _pair_diff(reward: ItemReward, ex: Examples, rows: torch.Tensor) -> torch.Tensor:
    if ex.right is None:
        raise ModelError("a pairwise label model got examples without right-hand items")
    return reward(torch.from_numpy(ex.left)[rows]) - reward(torch.from_numpy(ex.right)[rows])


class Davidson(LabelModel):
    """Ties with one parameter ν: the outcome is a softmax over (Δ/2, log ν, −Δ/2)."""

    name = "davidson"

    def make_params(self, ex: Examples) -> LabelParams:
        tie_share = float(np.clip(np.mean(ex.target == 0.5), 0.01, 0.99))  # P(tie) at Δ = 0 is ν/(2+ν)
        return LabelParams({"log_nu": np.array(np.log(2 * tie_share / (1 - tie_share)))})

    def losses(self, reward: ItemReward, ex: Examples, rows: torch.Tensor, params: LabelParams) -> torch.Tensor:
        diff = _pair_diff(reward, ex, rows)
        logits = torch.stack([-diff / 2, params.get("log_nu").expand_as(diff), diff / 2], dim=-1)
        outcome = torch.from_numpy(np.rint(ex.target * 2).astype(np.int64))[rows].to(diff.device)  # b 0, tie 1, a 2
        return nn.functional.cross_entropy(logits, outcome, reduction="none")

    def describe(self, params: LabelParams) -> dict[str, Any]:
        nu = float(params.get("log_nu").detach().exp())
        return {"model": self.name, "nu": nu, "p_tie_at_equal_reward": nu / (2 + nu)}


def davidson_probabilities(diff: np.ndarray, nu: float) -> np.ndarray:
    """(n, 3) P(b wins), P(tie), P(a wins) under Davidson's model for reward differences ``diff``."""
    logits = np.stack([-diff / 2, np.full_like(diff, np.log(max(nu, 1e-300))), diff / 2], axis=-1)
    logits -= logits.max(-1, keepdims=True)
    p = np.exp(logits)
    return np.asarray(p / p.sum(-1, keepdims=True))


def davidson_log_likelihood(diff: np.ndarray, outcome: np.ndarray, nu: float) -> np.ndarray:
    """Per pair, log P(outcome) under Davidson's model (``outcome``: 0 b won, 1 tie, 2 a won), so rewards from
    any head can be scored on labels with ties."""
    p = davidson_probabilities(np.asarray(diff, np.float64), nu)
    return np.asarray(np.log(np.clip(p[np.arange(len(p)), np.asarray(outcome, np.int64)], 1e-300, None)))


def fit_davidson_nu(diff: np.ndarray, outcome: np.ndarray) -> float:
    """The ν that maximises the Davidson likelihood of ``outcome`` for fixed reward differences ``diff`` (a 1-D
    search over log ν), to give a head that never modelled ties its best tie probability."""
    grid = np.linspace(-8.0, 4.0, 121)
    for _ in range(3):
        best = grid[int(np.argmax([davidson_log_likelihood(diff, outcome, float(np.exp(g))).sum() for g in grid]))]
        step = grid[1] - grid[0]
        grid = np.linspace(best - step, best + step, 41)
    return float(np.exp(best))


class Graded(LabelModel):
    """Comparisons with strengths (and ties): an ordered logit on Δ with symmetric learned cutpoints."""

    name = "graded"

    def make_params(self, ex: Examples) -> LabelParams:
        strength = ex.strength if ex.strength is not None else np.full(len(ex), np.nan)
        known = np.isfinite(strength) & (ex.target != 0.5)
        edges, levels = level_edges(strength[known], MAX_STRENGTH_LEVELS) if known.any() else (np.zeros(0), np.zeros(1))
        arrays = {f"{FIXED}strength_edges": edges, f"{FIXED}strength_levels": levels,
                  "raw_steps": _inverse_softplus(np.ones(len(edges)))}
        if (ex.target == 0.5).any():  # a tie band only when ties were seen; without one P(tie) = 0
            arrays["raw_tie_halfwidth"] = _inverse_softplus(np.array(0.5))
        return LabelParams(arrays)

    def cutpoints(self, params: LabelParams) -> torch.Tensor:
        """The positive cutpoints τ = p_0 < p_1 < ...: a wins with strength level m when p_{m} < Δ + ε ≤ p_{m+1}."""
        steps = params.get("raw_steps")
        tie = nn.functional.softplus(params.get("raw_tie_halfwidth")) if hasattr(params, "raw_tie_halfwidth") \
            else torch.zeros((), device=steps.device)
        return increasing(tie, steps)

    def losses(self, reward: ItemReward, ex: Examples, rows: torch.Tensor, params: LabelParams) -> torch.Tensor:
        diff = _pair_diff(reward, ex, rows)
        cuts = self.cutpoints(params)
        device = cuts.device
        n_levels = len(cuts)
        big = torch.tensor([BIG], device=device)
        upper_bounds = torch.cat([cuts[1:], big])  # level m of a win: (cuts[m], upper_bounds[m]]
        target = ex.target[rows.numpy()]
        strength = (ex.strength if ex.strength is not None else np.full(len(ex), np.nan))[rows.numpy()]
        known = np.isfinite(strength)
        level = np.where(known, np.searchsorted(params.fixed("strength_edges"), np.nan_to_num(strength),
                                                side="right"), 0)
        level_t = torch.from_numpy(np.minimum(level, n_levels - 1)).to(device)
        # in "winner's" orientation: the winner's margin s·Δ lies in its level's interval (any level if unknown)
        sign = torch.from_numpy(np.where(target < 0.5, -1.0, 1.0).astype(np.float32)).to(device)
        known_t = torch.from_numpy(known).to(device)
        low = torch.where(known_t, cuts[level_t], cuts[0].expand(len(level_t)))
        high = torch.where(known_t, upper_bounds[level_t], big.expand(len(level_t)))
        tie = torch.from_numpy(target == 0.5).to(device)
        low = torch.where(tie, -cuts[0].expand_as(low), low)
        high = torch.where(tie, cuts[0].expand_as(high), high)
        return -log_interval_probability(low, high, sign * diff)

    def describe(self, params: LabelParams) -> dict[str, Any]:
        cuts = self.cutpoints(params).detach().cpu().numpy()
        return {"model": self.name, "tie_halfwidth": float(cuts[0]), "cutpoints": [float(c) for c in cuts],
                "strength_levels": [float(v) for v in params.fixed("strength_levels")]}


class PlackettLuce(LabelModel):
    """Rankings best first (padded with −1): −Σ_i [r_i − log Σ_{j ≥ i} e^{r_j}]."""

    name = "plackett-luce"

    def make_params(self, ex: Examples) -> LabelParams:
        return LabelParams({})

    def losses(self, reward: ItemReward, ex: Examples, rows: torch.Tensor, params: LabelParams) -> torch.Tensor:
        if ex.lists is None:
            raise ModelError("a Plackett-Luce label model needs rankings (lists of items)")
        items = torch.from_numpy(ex.lists)[rows]
        present = items >= 0
        r = reward(items.clamp_min(0).flatten()).view(items.shape)
        present = present.to(r.device)
        r = torch.where(present, r, torch.full_like(r, -BIG))
        log_rest = torch.logcumsumexp(r.flip(-1), dim=-1).flip(-1)  # log Σ over the items not yet picked
        return -torch.where(present, r - log_rest, torch.zeros_like(r)).sum(-1)

    def describe(self, params: LabelParams) -> dict[str, Any]:
        return {"model": self.name}


class Ordinal(LabelModel):
    """Ratings as ordered levels: P(level ≤ k) = σ(θ_k − r), thresholds learned and ordered."""

    name = "ordinal"

    def make_params(self, ex: Examples) -> LabelParams:
        edges, levels = level_edges(ex.target.astype(np.float64), MAX_ORDINAL_LEVELS)
        if len(levels) < 2:
            raise ModelError(f"an ordinal head needs ratings with at least 2 different values; all are {levels[0]:g}")
        level = np.searchsorted(edges, ex.target, side="right")
        cumulative = np.clip(np.cumsum(np.bincount(level, minlength=len(levels)))[:-1] / len(level), 0.01, 0.99)
        start = np.log(cumulative / (1 - cumulative))  # the thresholds that fit the level shares at r = 0
        scale = ex.scale if ex.scale is not None else (np.nan, np.nan)
        return LabelParams({f"{FIXED}edges": edges, f"{FIXED}levels": levels, f"{FIXED}scale": np.array(scale),
                            "first_threshold": np.array(start[0]),
                            "raw_steps": _inverse_softplus(np.maximum(np.diff(start), 1e-2))})

    def thresholds(self, params: LabelParams) -> torch.Tensor:
        return increasing(params.get("first_threshold"), params.get("raw_steps"))

    def losses(self, reward: ItemReward, ex: Examples, rows: torch.Tensor, params: LabelParams) -> torch.Tensor:
        theta = self.thresholds(params)
        big = torch.tensor([BIG], device=theta.device)
        bounds = torch.cat([-big, theta, big])
        level = torch.from_numpy(np.searchsorted(params.fixed("edges"), ex.target[rows.numpy()],
                                                 side="right")).to(theta.device)
        r = reward(torch.from_numpy(ex.left)[rows])
        return -log_interval_probability(bounds[level], bounds[level + 1], r)

    def level_probabilities(self, params: LabelParams, reward: np.ndarray) -> np.ndarray:
        """(n, levels) P(level k | r) for rewards ``reward``."""
        theta = self.thresholds(params).detach().cpu().numpy().astype(np.float64)
        cdf = 1 / (1 + np.exp(-(theta[None, :] - np.asarray(reward, np.float64)[:, None])))
        cdf = np.concatenate([np.zeros((len(cdf), 1)), cdf, np.ones((len(cdf), 1))], axis=1)
        return np.asarray(np.diff(cdf, axis=1))

    def expected_rating(self, params: LabelParams, reward: np.ndarray) -> np.ndarray:
        """E[rating | r] on the ratings' own scale (levels are stored on [0, 1] when the ratings had a scale)."""
        value = self.level_probabilities(params, reward) @ params.fixed("levels").astype(np.float64)
        low, high = params.fixed("scale").astype(np.float64)
        return np.asarray(value if np.isnan(low) else low + (high - low) * value)

    def describe(self, params: LabelParams) -> dict[str, Any]:
        low, high = (float(v) for v in params.fixed("scale"))
        levels = params.fixed("levels").astype(np.float64)
        if not np.isnan(low):
            levels = low + (high - low) * levels
        return {"model": self.name, "thresholds": [float(t) for t in self.thresholds(params).detach().cpu().numpy()],
                "levels": [float(v) for v in levels], "scale": None if np.isnan(low) else [low, high]}


for _model in (Davidson(), Graded(), PlackettLuce(), Ordinal()):
    LABEL_MODELS.register(_model.name, _model)


def get_label_model(name: str) -> LabelModel:
    """The registered label model ``name`` (a `ModelError` listing the known ones)."""
    return LABEL_MODELS.lookup(name)
