"""Live best-of-n: sample ``n`` responses per prompt from a generator, score them, keep one.

The offline commands (`select`, `bon-eval`) pick from candidate files someone sampled earlier; this one
closes the loop at test time. Every sampled candidate is returned with its reward, not only the pick,
so a user can see what the reward model chose between (and re-select later without sampling again).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from rewardlab.data.hh_rlhf import chat_turns, is_dialogue
from rewardlab.errors import ModelError
from rewardlab.generate.base import ChatPrompt, Generator, SamplingParams
from rewardlab.generate.candidates import sample_texts
from rewardlab.optimize.selection import select_index, soft_best_of_n_kl
from rewardlab.optimize.trl_rewards import reward_prompt_text

if TYPE_CHECKING:
    from rewardlab.rewards.model import RewardModel


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
        """The pick as one JSON-lines row: prompt, kept response and its reward, every candidate with its reward, ``source``,
        the members' reward std for ensembles, and ``extra``."""
        row: dict[str, Any] = {"prompt": self.prompt, "response": self.response, "index": self.index,
                               "reward": float(self.rewards[self.index]), "strategy": self.strategy, "source": source,
                               "candidates": [{"text": t, "reward": float(r)} for t, r in zip(self.candidates, self.rewards)]}
        if self.member_rewards is not None:
            row["reward_std"] = float(self.member_rewards[:, self.index].std())
        row.update(self.extra)
        return row


def live_best_of_n(generator: Generator, reward_model: RewardModel, prompts: Sequence[str], params: SamplingParams, *,
                   strategy: str = "argmax", soft_temperature: float = 1.0, aggregate: str = "lcb", lam: float = 1.0,
                   prompt_format: str = "last-user", batch_size: int = 8, seed: int = 0,
                   on_progress: Callable[[int, int], None] | None = None) -> Iterator[LivePick]:
    """Yield one `LivePick` per prompt, in order, sampling ``batch_size`` prompts at a time.

    Prompt batch ``k`` is sampled with seed ``params.seed + k`` (as `rewardlab generate` does), and the
    soft strategy draws from one RNG seeded with ``seed``, so a run is reproducible end to end. Settings
    are checked here, before anything is sampled.
    """
    if strategy == "conservative" and not reward_model.is_ensemble:
        raise ModelError("conservative selection needs an ensemble reward model (train with --ensemble N)")
    return _live_picks(generator, reward_model, prompts, params, strategy, soft_temperature, aggregate, lam,
                       prompt_format, batch_size, seed, on_progress)


def _live_picks(generator: Generator, reward_model: RewardModel, prompts: Sequence[str], params: SamplingParams,
                strategy: str, soft_temperature: float, aggregate: str, lam: float, prompt_format: str,
                batch_size: int, seed: int, on_progress: Callable[[int, int], None] | None) -> Iterator[LivePick]:
    rng = np.random.default_rng(seed)
    total = len(prompts)
    if on_progress:
        on_progress(0, total)
    for k, start in enumerate(range(0, total, batch_size)):
        chunk = list(prompts[start:start + batch_size])
        inputs: list[ChatPrompt] = [chat_turns(p) if is_dialogue(p) else p for p in chunk]
        # a prompt counts once sampled (the batch's scoring is quick next to sampling)
        on_done = None if on_progress is None else (lambda done, before=start: on_progress(before + done, total))
        texts = sample_texts(generator, inputs, params, None if params.seed is None else params.seed + k, on_done)
        flat_prompts = [reward_prompt_text(p, prompt_format) for p, pool in zip(chunk, texts) for _ in pool]
        flat_responses = [t for pool in texts for t in pool]
        all_members = reward_model.score_members(flat_prompts, flat_responses)
        flat = all_members.mean(axis=0)  # a single model is one member: its own score
        members = all_members if reward_model.is_ensemble else None
        offset = 0
        for prompt, pool in zip(chunk, texts):
            rewards = flat[offset:offset + len(pool)]
            pool_members = None if members is None else members[:, offset:offset + len(pool)]
            offset += len(pool)
            given = pool_members if strategy == "conservative" and pool_members is not None else rewards
            index = select_index(given, strategy, temperature=soft_temperature, how=aggregate, lam=lam, rng=rng)
            extra = {"kl_to_uniform": soft_best_of_n_kl(rewards, soft_temperature)} if strategy == "soft" else {}
            yield LivePick(prompt, list(pool), rewards, index, strategy, pool_members, extra)
        if on_progress:
            on_progress(min(start + batch_size, total), total)
