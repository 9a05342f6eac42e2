"""One pick per candidate pool with a selection strategy, as JSON-ready rows (what `rewardlab select` writes)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from rewardlab.data.candidates import CandidateSet
from rewardlab.errors import ModelError, RewardlabError
from rewardlab.optimize.selection import STRATEGIES, select_index, soft_best_of_n_kl


def pick_from_sets(sets: Sequence[CandidateSet], scores: Sequence[np.ndarray], members: Sequence[np.ndarray] | None,
                   strategy: str = "argmax", temperature: float = 1.0, aggregate: str = "lcb", lam: float = 1.0,
                   seed: int = 0) -> list[dict[str, Any]]:
    """Per pool: the chosen response, its index and reward (plus gold, source and soft's KL where they exist)."""
    if strategy not in STRATEGIES:
        raise RewardlabError(f"strategy must be one of {', '.join(STRATEGIES)}, not {strategy!r}")
    if strategy == "conservative" and members is None:
        raise ModelError("conservative selection needs an ensemble reward model (train with --ensemble N)")
    if strategy == "soft" and temperature <= 0:
        raise RewardlabError("soft selection needs a temperature > 0")
    rng = np.random.default_rng(seed)
    picks = []
    for i, pool in enumerate(sets):
        given = members[i] if strategy == "conservative" and members is not None else scores[i]
        index = select_index(given, strategy, temperature=temperature, how=aggregate, lam=lam, rng=rng)
        row: dict[str, Any] = {"prompt": pool.prompt, "response": pool.responses[index], "index": index,
                               "reward": float(scores[i][index]), "strategy": strategy}
        if pool.sources:
            row["source"] = pool.sources[index]
        if strategy == "soft":
            row["kl_to_uniform"] = soft_best_of_n_kl(scores[i], temperature)
        if pool.gold is not None:
            row["gold"] = float(pool.gold[index])
        picks.append(row)
    return picks
