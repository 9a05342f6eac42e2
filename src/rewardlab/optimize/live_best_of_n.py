"""Live best-of-n: sample ``n`` responses per prompt from a generator, score them, keep one.

The offline commands (`select`, `bon-eval`) pick from candidate files someone sampled earlier; this one
closes the loop at test time. Every sampled candidate is returned with its reward, not only the pick,
so a user can see what the reward model chose between (and re-select later without sampling again).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rewardlab.data.hh_rlhf import chat_turns, is_dialogue
from rewardlab.generate.base import Generator, Prompt, SamplingParams
from rewardlab.optimize.selection import select, soft_best_of_n_kl
from rewardlab.optimize.trl_rewards import reward_prompt_text
from rewardlab.rewards.ensemble import EnsembleHead


@dataclass
class LivePick:
    """One prompt's pool: every candidate with its reward, and which one was kept."""

    prompt: str
    candidates: list[str]
    rewards: np.ndarray  # (n,) the rewards the pick was made on (for ensembles: the mean)
    index: int
    strategy: str
    member_rewards: np.ndarray | None = None  # (members, n) for ensembles
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def response(self) -> str:
        return self.candidates[self.index]

    def record(self, source: str) -> dict[str, Any]:
        row: dict[str, Any] = {"prompt": self.prompt, "response": self.response, "index": self.index,
                               "reward": float(self.rewards[self.index]), "strategy": self.strategy, "source": source,
                               "candidates": [{"text": t, "reward": float(r)} for t, r in zip(self.candidates, self.rewards)]}
        if self.member_rewards is not None:
            row["reward_std"] = float(self.member_rewards[:, self.index].std())
        row.update(self.extra)
        return row


def live_best_of_n(generator: Generator, reward_model: Any, prompts: Sequence[str], params: SamplingParams, *,
                   strategy: str = "argmax", soft_temperature: float = 1.0, aggregate: str = "lcb", lam: float = 1.0,
                   prompt_format: str = "last-user", batch_size: int = 8, seed: int = 0,
                   on_progress: Callable[[int, int], None] | None = None) -> Iterator[LivePick]:
    """Yield one `LivePick` per prompt, in order, sampling ``batch_size`` prompts at a time.

    Prompt batch ``k`` is sampled with seed ``params.seed + k`` (as `rewardlab generate` does), and the
    soft strategy draws from one RNG seeded with ``seed``, so a run is reproducible end to end.
    """
    ensemble = isinstance(reward_model.head, EnsembleHead)
    if strategy == "conservative" and not ensemble:
        raise ValueError("conservative selection needs an ensemble reward model (train with --ensemble N)")
    rng = np.random.default_rng(seed)
    total = len(prompts)
    if on_progress:
        on_progress(0, total)
    for k, start in enumerate(range(0, total, batch_size)):
        chunk = list(prompts[start:start + batch_size])
        inputs: list[Prompt] = [chat_turns(p) if is_dialogue(p) else p for p in chunk]
        texts = generator.generate(inputs, n=params.n, temperature=params.temperature, top_p=params.top_p,
                                   max_new_tokens=params.max_new_tokens,
                                   seed=None if params.seed is None else params.seed + k)
        flat_prompts = [reward_prompt_text(p, prompt_format) for p, pool in zip(chunk, texts) for _ in pool]
        flat_responses = [t for pool in texts for t in pool]
        x = reward_model.featurize(flat_prompts, flat_responses)
        members = reward_model.head.predict_members(x) if ensemble else None
        flat = members.mean(axis=0) if members is not None else np.asarray(reward_model.head.predict(x))
        offset = 0
        for prompt, pool in zip(chunk, texts):
            rewards = flat[offset:offset + len(pool)]
            pool_members = None if members is None else members[:, offset:offset + len(pool)]
            offset += len(pool)
            given = pool_members if strategy == "conservative" else rewards
            index = select(given, strategy, temperature=soft_temperature, how=aggregate, lam=lam, rng=rng)
            extra = {"kl_to_uniform": soft_best_of_n_kl(rewards, soft_temperature)} if strategy == "soft" else {}
            yield LivePick(prompt, list(pool), rewards, index, strategy, pool_members, extra)
        if on_progress:
            on_progress(min(start + batch_size, total), total)
