"""Head kinds by name (``bt-mlp``, ``clf-lgbm``, ...): building them and loading them back.

A kind is a head class plus fixed parameters (``bt-mlp`` = `TorchHead` with ``objective="bt"``,
``hidden=256``). Kinds live in the `HEAD_KINDS` registry; adding one is one `register_head_kind` line
(and, for a new head class, a module with a `register_head_class`-decorated class).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from rewardlab.errors import ModelError
from rewardlab.registry import Registry
from rewardlab.rewards.annotator_head import AnnotatorHead
from rewardlab.rewards.base import HEAD_CLASSES, RewardHead, load_head
from rewardlab.rewards.default_recipe import DEFAULT_HEAD
from rewardlab.rewards.ensemble import EnsembleHead, check_ensemble
from rewardlab.rewards.lightgbm_head import LightGBMHead
from rewardlab.rewards.mixture import MixtureBTHead
from rewardlab.rewards.multi_objective import MultiObjectiveHead
from rewardlab.rewards.objectives import get_objective
from rewardlab.rewards.torch_head import TorchHead


class HeadKind(NamedTuple):
    """A named head recipe. A tuple, so ``cls, fixed, feedback = HEAD_KINDS[kind]`` keeps working."""

    head_class: Callable[..., RewardHead]
    fixed: dict[str, Any]
    feedback: str  # what it learns from: comparisons, labels, ratings, ...


HEAD_KINDS: Registry[HeadKind] = Registry("head kind", ModelError)


def register_head_kind(name: str, head_class: Callable[..., RewardHead], feedback: str | None = None,
                       *, replace: bool = False, **fixed: Any) -> HeadKind:
    """Register kind ``name`` = ``head_class(**fixed, **user params)``.

    ``feedback`` defaults to what the ``objective`` in ``fixed`` learns from.
    """
    if feedback is None:
        if "objective" not in fixed:
            raise ModelError(f"head kind {name!r}: say what feedback it learns from (no objective to ask)")
        feedback = get_objective(fixed["objective"]).feedback
    return HEAD_KINDS.register(name, HeadKind(head_class, dict(fixed), feedback), replace=replace)


register_head_kind("bt-linear", TorchHead, objective="bt", hidden=0)
register_head_kind("bt-mlp", TorchHead, objective="bt", hidden=256)
register_head_kind("clf-logistic", TorchHead, objective="clf", hidden=0)
register_head_kind("clf-mlp", TorchHead, objective="clf", hidden=256)
register_head_kind("clf-lgbm", LightGBMHead, objective="clf")
register_head_kind("bt-mlp-debiased", TorchHead, objective="bt", hidden=256, length_debias=True, balance_length=True)
register_head_kind("clf-mlp-debiased", TorchHead, objective="clf", hidden=256, length_debias=True, balance_length=True)
register_head_kind("outcome-logistic", TorchHead, objective="outcome", hidden=0)
register_head_kind("outcome-mlp", TorchHead, objective="outcome", hidden=256)
register_head_kind("outcome-lgbm", LightGBMHead, objective="outcome")
register_head_kind("rating-linear", TorchHead, objective="rating", hidden=0)
register_head_kind("rating-mlp", TorchHead, objective="rating", hidden=256)
register_head_kind("rating-lgbm", LightGBMHead, objective="rating")
register_head_kind("davidson-linear", TorchHead, objective="davidson", hidden=0)
register_head_kind("davidson-mlp", TorchHead, objective="davidson", hidden=256)
register_head_kind("bt-strength-linear", TorchHead, objective="bt-strength", hidden=0)
register_head_kind("bt-strength-mlp", TorchHead, objective="bt-strength", hidden=256)
register_head_kind("pl-linear", TorchHead, objective="plackett-luce", hidden=0)
register_head_kind("pl-mlp", TorchHead, objective="plackett-luce", hidden=256)
register_head_kind("ordinal-linear", TorchHead, objective="ordinal", hidden=0)
register_head_kind("ordinal-mlp", TorchHead, objective="ordinal", hidden=256)
register_head_kind("bt-mlp-annotator", AnnotatorHead, "comparisons")
register_head_kind("bt-mixture", MixtureBTHead, "comparisons")
register_head_kind("multi-objective", MultiObjectiveHead, "comparisons")


def kinds_learning_from(feedback: str) -> list[str]:
    """The head kinds that learn from ``feedback`` (e.g. ``labels``)."""
    return [name for name, kind in HEAD_KINDS.items() if kind.feedback == feedback]


def make_head(kind: str, seed: int = 0, ensemble: int = 0, **params: Any) -> RewardHead:
    """A fresh head of ``kind``; ``ensemble=n`` (n >= 2) wraps n seeds of it in an `EnsembleHead`.

    ``params`` override the head's defaults (not the kind's fixed ones); for an ensemble,
    ``aggregate`` and ``lam`` configure the ensemble itself. Bad parameters fail here, not at fit time.
    """
    head_class, fixed, _ = HEAD_KINDS.lookup(kind)
    aggregate = params.pop("aggregate", "mean") if ensemble else "mean"
    lam = params.pop("lam", 1.0) if ensemble else 1.0
    clash = set(fixed) & set(params)
    if clash:
        raise ModelError(f"bad parameters for head {kind!r}: {', '.join(sorted(clash))} is fixed by the kind")
    try:
        head = head_class(seed=seed, **fixed, **params)
    except TypeError as exc:
        raise ModelError(f"bad parameters for head {kind!r}: {exc}") from None
    if not ensemble:
        return head
    check_ensemble(ensemble, aggregate)
    return EnsembleHead(head, n=ensemble, seed=seed, aggregate=aggregate, lam=lam, member_kind=kind)


__all__ = ["DEFAULT_HEAD", "HEAD_CLASSES", "HEAD_KINDS", "HeadKind", "RewardHead", "kinds_learning_from", "load_head",
           "make_head", "register_head_kind"]
