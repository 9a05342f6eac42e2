"""Ensembles of reward heads: disagreement between members is the uncertainty estimate.

Conservative aggregates (``min`` over members, ``mean - λ·std``) are the standard guard against a policy
exploiting one model's mistakes (Coste et al., 2023).

An ensemble of annotator-aware heads (``bt-mlp-annotator``, ``bt-mixture``) scores per annotator too: an
annotator's reward is the mean of the members' rewards for that annotator, so ``score --annotator`` and
``--distribution`` work on it as on one head.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from rewardlab.artifacts import replace_directory
from rewardlab.errors import ModelError
from rewardlab.rewards.annotator_aware import QUANTILES, UnknownAnnotatorWarning
from rewardlab.rewards.base import (
    STAT_KEYS,
    FitProgress,
    HeadBase,
    RewardHead,
    head_params,
    load_head,
    read_head_json,
    register_head_class,
    write_head_json,
)
from rewardlab.rewards.head_device import fit_head, fits_on_device, move_head
from rewardlab.rewards.training_set import TrainingSet

if TYPE_CHECKING:
    import torch

AGGREGATES = ("mean", "min", "lcb")


def check_aggregate(aggregate: str) -> str:
    """Returns ``aggregate`` if it is one of `AGGREGATES` (so it can be checked inline), else raises a `ModelError`."""
    if aggregate not in AGGREGATES:
        raise ModelError(f"unknown aggregate {aggregate!r}; known: {', '.join(AGGREGATES)}")
    return aggregate


def check_ensemble(n: int, aggregate: str) -> None:
    """The checks an ensemble's parameters must pass (run by `make_head` at once, and again by ``fit``)."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 2:
        raise ModelError(f"an ensemble needs at least 2 members, not {n!r}")
    check_aggregate(aggregate)


def aggregate_members(scores: np.ndarray, lam: float = 1.0) -> dict[str, np.ndarray]:
    """Per-row aggregates of (n_members, n_rows) rewards: mean, std, min and the lower bound mean − λ·std."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2 or scores.shape[0] < 2:
        raise ModelError(f"expected (members >= 2, rows) scores, got shape {scores.shape}")
    mean, std = scores.mean(0), scores.std(0, ddof=1)
    return {"mean": mean, "std": std, "min": scores.min(0), "lcb": mean - lam * std}


def member_progress(on_progress: FitProgress | None, index: int, n: int) -> FitProgress | None:
    """Member ``index`` of ``n``'s progress as a share of the whole ensemble's."""
    if on_progress is None:
        return None
    report = on_progress
    return lambda done, total: report(index * total + done, n * total)


@register_head_class
class EnsembleHead(HeadBase):
    """``n`` clones of ``base`` that differ only by seed (initialisation, batch order, validation split).

    Member ``i`` is ``base.clone()`` with ``seed = seed + i``, so a loaded ensemble (whose ``base`` is
    rebuilt from its first member's saved parameters) can be fitted again to new data.

    ``fit(data, device=...)`` fits every member there, when its kind fits on a device (torch heads); LightGBM
    members fit on the CPU.
    """

    class_name: ClassVar[str] = "ensemble"

    def __init__(self, base: RewardHead, n: int = 5, seed: int = 0, aggregate: str = "mean", lam: float = 1.0,
                 member_kind: str = "") -> None:
        self.base = base
        self.n = n
        self.seed = seed
        self.aggregate = aggregate
        self.lam = lam
        self.member_kind = member_kind

    def params(self) -> dict[str, Any]:
        """As saved: the members' own parameters are saved with each member."""
        return {k: v for k, v in self.get_params().items() if k != "base"}

    def clone(self) -> EnsembleHead:
        return EnsembleHead(self.base.clone(), **self.params())

    @property
    def n_members(self) -> int:
        return self.n

    @property
    def fits_on_device(self) -> bool:
        """Whether ``fit`` puts the members on a device: when their kind fits there (`head_device.fits_on_device`)."""
        return fits_on_device(self.base)

    def fit(self, data: TrainingSet, on_progress: FitProgress | None = None,
            device: torch.device | str | None = None) -> EnsembleHead:
        """Fit every member on ``data`` (on ``device`` where the members' kind can; None: the CPU)."""
        check_ensemble(self.n, self.aggregate)
        if "seed" not in self.base.get_params():
            raise ModelError(f"ensemble members differ by seed, but {type(self.base).__name__} has no 'seed' parameter")
        self.members_ = [fit_head(self.base.clone().set_params(seed=self.seed + i), data,
                                  member_progress(on_progress, i, self.n), device)
                         for i in range(self.n)]
        self.fit_log_ = {"members": [m.fit_log for m in self.members_]}
        return self

    def move_to(self, device: torch.device | str) -> EnsembleHead:
        """Every member predicts on ``device`` from now on (members that cannot stay on the CPU); returns the head."""
        self._check_fitted()
        for member in self.members_:
            move_head(member, device)
        return self

    def predict_members(self, x: np.ndarray) -> np.ndarray:
        """(n_members, n_rows) rewards."""
        self._check_fitted()
        return np.stack([m.predict(x) for m in self.members_])

    def predict_stats(self, x: np.ndarray, lam: float | None = None) -> dict[str, np.ndarray]:
        """`STAT_KEYS` over the members; ``score`` is the configured aggregate (with ``lam`` if given)."""
        stats = aggregate_members(self.predict_members(x), self.lam if lam is None else lam)
        stats["score"] = stats[check_aggregate(self.aggregate)]
        return {key: stats[key] for key in STAT_KEYS}

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.predict_stats(x)[self.aggregate]

    # ------------------------------------------------------------------ per annotator (annotator-aware members)
    @property
    def annotator_aware(self) -> bool:
        """Whether every member scores per annotator (an ensemble of annotator-aware heads)."""
        heads = getattr(self, "members_", None) or [self.base]
        return all(callable(getattr(m, "predict_for", None)) for m in heads)

    def _aware_members(self) -> list[Any]:
        self._check_fitted()
        if not self.annotator_aware:
            raise ModelError(f"this ensemble's members ({self.member_kind or type(self.base).__name__}) do not score "
                             "per annotator")
        return list(self.members_)

    @property
    def annotators(self) -> list[str]:
        """Every annotator id a member was trained with (members' vocabularies can differ by their validation
        split)."""
        return sorted(set().union(*(m.annotators for m in self._aware_members())))

    def predict_annotators(self, x: np.ndarray) -> np.ndarray:
        """(n_annotators, n_rows): each annotator's reward averaged over members (a member that does not know the
        annotator contributes its population reward)."""
        names = self.annotators
        out = []
        for member in self._aware_members():
            known = {a: i for i, a in enumerate(member.annotators)}
            rewards, population = member.predict_annotators(x), member.predict(x)
            out.append(np.stack([rewards[known[a]] if a in known else population for a in names]))
        return np.asarray(np.mean(out, axis=0))

    def predict_for(self, x: np.ndarray, annotator: str) -> np.ndarray:
        """Annotator ``annotator``'s reward, the mean over members; an id no member knows gets the ensemble's
        population score (its aggregate) and an `UnknownAnnotatorWarning`."""
        names = self.annotators
        if annotator not in names:
            warnings.warn(f"annotator {annotator!r} is not one this model was trained with ({len(names)} known); "
                          "scoring with the population reward", UnknownAnnotatorWarning, stacklevel=2)
            return self.predict(x)
        return np.asarray(self.predict_annotators(x)[names.index(annotator)])

    def predict_distribution(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Over the known annotators (member-averaged rewards), per row: mean, std and the 10/50/90% quantiles."""
        rewards = self.predict_annotators(x)
        stats = {"mean": rewards.mean(0), "std": rewards.std(0)}
        for q, values in zip(QUANTILES, np.quantile(rewards, QUANTILES, axis=0)):
            stats[f"q{round(q * 100):02d}"] = values
        return stats

    def prob_prefers(self, x_a: np.ndarray, x_b: np.ndarray) -> np.ndarray:
        """P(a random annotator prefers a over b), the mean over members of each member's."""
        return np.asarray(np.mean([m.prob_prefers(x_a, x_b) for m in self._aware_members()], axis=0))

    def save(self, directory: Path) -> None:
        """head.json and every member, replaced as one unit: written to a temporary sibling, fsynced, renamed into
        place (`rewardlab.artifacts.replace_directory`), so an interrupted save never mixes old and new members."""
        self._check_fitted()

        def write(tmp: Path) -> None:
            write_head_json(tmp, self, self.class_name)
            for i, member in enumerate(self.members_):
                member.save(tmp / "members" / f"{i:03d}")

        replace_directory(directory, write, marker="head.json")

    @classmethod
    def load(cls, directory: Path) -> EnsembleHead:
        config = read_head_json(directory)
        params = head_params(config, directory)
        n: Any = params.get("n")
        check_ensemble(n, params.get("aggregate", "mean"))
        lam = params.get("lam", 1.0)
        if isinstance(lam, bool) or not isinstance(lam, int | float) or not np.isfinite(lam):
            raise ModelError(f"{directory / 'head.json'}: 'lam' must be a finite number, not {str(lam)[:50]!r}")
        saved = directory / "members"
        count = sum(1 for p in saved.iterdir() if p.is_dir()) if saved.is_dir() else 0
        if count != params["n"]:
            raise ModelError(f"{saved}: head.json says {params['n']} members, but {count} are saved")
        members = [load_head(directory / "members" / f"{i:03d}") for i in range(params["n"])]
        head = cls(members[0].clone(), **params)
        head.members_ = members
        head.fit_log_ = config.get("fit_log", {})
        return head
