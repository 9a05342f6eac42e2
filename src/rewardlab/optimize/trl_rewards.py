"""rewardlab reward models as TRL reward functions, and on-policy preference pairs labelled by them.

TRL hands a GRPO reward function its batch in one of two formats: *standard* (prompts and completions are
strings) or *conversational* (lists of ``{"role", "content"}`` messages). A rewardlab reward model scores
(prompt text, response text), and one trained on HH-RLHF saw prompts as ``\\n\\nHuman: …\\n\\nAssistant: …``
dialogue text, so `RewardFunction` turns either format back into that text (``prompt_format="hh"``) or
keeps only the last user message (``"last-user"``) for models trained on single-turn prompts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from rewardlab.data.hh_rlhf import ASSISTANT_TAG, chat_turns, dialogue_text
from rewardlab.errors import RewardlabError
from rewardlab.generate.base import ChatPrompt, Generator

if TYPE_CHECKING:
    from rewardlab.rewards.model import RewardModel

PROMPT_FORMATS = ("hh", "last-user")
_HUMAN_TAG = "\n\nHuman:"


class PolicyError(RewardlabError):
    """Policy optimization (GRPO / DPO through TRL) cannot run as asked."""


def check_prompt_format(prompt_format: str) -> str:
    """Returns ``prompt_format`` if it is one of `PROMPT_FORMATS` (so it can be checked inline), else raises a `PolicyError`."""
    if prompt_format not in PROMPT_FORMATS:
        raise PolicyError(f"unknown prompt format {prompt_format!r}; choose from {', '.join(PROMPT_FORMATS)}")
    return prompt_format


def as_messages(prompt: ChatPrompt | str) -> list[dict[str, str]]:
    """A prompt as chat messages: HH dialogue text is parsed into its turns, other text is one user turn."""
    if not isinstance(prompt, str):
        return [{"role": str(m["role"]), "content": str(m["content"])} for m in prompt]
    text = prompt.rstrip()
    return chat_turns(text[: -len(ASSISTANT_TAG)] if _HUMAN_TAG in prompt and text.endswith(ASSISTANT_TAG) else prompt)


def reward_prompt_text(prompt: ChatPrompt | str, prompt_format: str = "hh") -> str:
    """The prompt text a reward model scores: HH dialogue text, or the last user message."""
    messages = as_messages(prompt)
    if prompt_format == "hh":
        return dialogue_text(messages)
    if prompt_format == "last-user":
        users = [m["content"] for m in messages if m["role"] == "user"]
        if not users:
            raise PolicyError(f"prompt_format='last-user' needs a user message, but the prompt has none: {messages!r}")
        return users[-1]
    raise PolicyError(f"unknown prompt format {prompt_format!r}; choose from {', '.join(PROMPT_FORMATS)}")


def completion_text(completion: str | Sequence[Mapping[str, Any]]) -> str:
    """A completion's response text: the string itself, or its assistant messages' content."""
    if isinstance(completion, str):
        return completion
    parts = []
    for message in completion:
        if message.get("role") != "assistant":
            continue
        content = message.get("content")
        if not isinstance(content, str):
            raise PolicyError(f"a completion message's content must be text to be scored, not {type(content).__name__}")
        parts.append(content)
    return "\n".join(parts)


class RewardFunction:
    """A `RewardModel` that is directly a TRL reward function: ``GRPOTrainer(reward_funcs=RewardFunction(rm))``.

    TRL logs each reward function under its ``__name__`` (e.g. ``rewards/proxy/mean``), so name it.
    """

    def __init__(self, reward_model: RewardModel, prompt_format: str = "hh", name: str = "proxy") -> None:
        self.reward_model = reward_model
        self.prompt_format = check_prompt_format(prompt_format)
        self.__name__ = name

    def score(self, prompts: Sequence[ChatPrompt | str], responses: Sequence[str]) -> np.ndarray:
        """Rewards of (prompt, response text) pairs, prompts in any form `as_messages` takes."""
        if len(prompts) != len(responses):
            raise PolicyError(f"{len(prompts)} prompts but {len(responses)} responses to score")
        if not prompts:
            return np.zeros(0)
        texts = [reward_prompt_text(p, self.prompt_format) for p in prompts]
        return np.asarray(self.reward_model.score(texts, list(responses)), dtype=np.float64)

    def __call__(self, prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any) -> list[float]:
        """TRL's reward-function signature; extra keyword arguments (dataset columns, trainer state) are ignored."""
        return [float(r) for r in self.score(prompts, [completion_text(c) for c in completions])]


class LabelledPairs(NamedTuple):
    """On-policy preference rows and how many prompts gave no pair (best and worst too close or identical)."""

    rows: list[dict[str, Any]]
    skipped: int


def label_on_policy_pairs(
    generator: Generator,
    reward_model: RewardModel | RewardFunction,
    prompts: Sequence[ChatPrompt],
    n: int = 4,
    temperature: float = 1.0,
    top_p: float = 1.0,
    max_new_tokens: int = 128,
    seed: int | None = 0,
    min_margin: float = 0.0,
    prompt_format: str = "hh",
    batch_size: int = 8,
    on_progress: Callable[[int, int], None] | None = None,
) -> LabelledPairs:
    """Sample ``n`` responses per prompt, score them, and pair the best (chosen) with the worst (rejected).

    A prompt is skipped, and counted in ``skipped``, when its best and worst responses are the same text or
    their rewards differ by no more than ``min_margin``: such a pair carries no preference to learn from.
    Rows keep the prompt as given (a string or chat messages), so they feed `DPOTrainer` directly.
    """
    if n < 2:
        raise PolicyError(f"on-policy pairs need at least 2 samples per prompt, not n={n}")
    if min_margin < 0:
        raise PolicyError(f"min_margin must be >= 0, not {min_margin}")
    if batch_size < 1:
        raise PolicyError(f"batch_size must be at least 1, not {batch_size}")
    scorer = reward_model if isinstance(reward_model, RewardFunction) else RewardFunction(reward_model, prompt_format)
    rows: list[dict[str, Any]] = []
    skipped = 0
    total = len(prompts)
    for start in range(0, total, batch_size):
        chunk = list(prompts[start:start + batch_size])
        chunk_seed = None if seed is None else seed + start
        samples = generator.generate(chunk, n=n, temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens,
                                     seed=chunk_seed)
        flat_prompts = [p for p, texts in zip(chunk, samples) for _ in texts]
        rewards = scorer.score(flat_prompts, [t for texts in samples for t in texts])
        offset = 0
        for prompt, texts in zip(chunk, samples):
            scores = rewards[offset:offset + len(texts)]
            offset += len(texts)
            best, worst = int(np.argmax(scores)), int(np.argmin(scores))
            if texts[best] == texts[worst] or scores[best] - scores[worst] <= min_margin:
                skipped += 1
                continue
            rows.append({"prompt": prompt, "chosen": texts[best], "rejected": texts[worst],
                         "chosen_reward": float(scores[best]), "rejected_reward": float(scores[worst])})
        if on_progress is not None:
            on_progress(min(start + batch_size, total), total)
    return LabelledPairs(rows, skipped)
