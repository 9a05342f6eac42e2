"""What every generator shares: sampling settings, a completion record and the `Generator` protocol."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from rewardlab.errors import RewardlabError

#: one chat turn, as the OpenAI API and chat templates take it
ChatTurn = dict[str, str]
Chat = list[ChatTurn]
#: a plain user prompt, or a whole conversation to continue
ChatPrompt = str | Chat


class GenerationError(RewardlabError):
    """A generator cannot be built, or a request cannot be served as asked."""


@dataclass(frozen=True)
class SamplingParams:
    """How to sample; ``temperature == 0`` means greedy decoding (then all ``n`` samples are equal)."""

    n: int = 1
    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int = 128
    seed: int | None = 0

    def __post_init__(self) -> None:
        if self.n < 1:
            raise GenerationError(f"n must be at least 1, not {self.n}")
        if self.temperature < 0:
            raise GenerationError(f"temperature must be >= 0, not {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise GenerationError(f"top_p must be in (0, 1], not {self.top_p}")
        if self.max_new_tokens < 1:
            raise GenerationError(f"max_new_tokens must be at least 1, not {self.max_new_tokens}")


#: How `generate run` and `bon` sample unless told otherwise: several diverse, full-length answers per prompt.
CANDIDATE_SAMPLING = SamplingParams(n=8, temperature=1.0, top_p=0.95, max_new_tokens=256, seed=0)


@dataclass(frozen=True)
class Completion:
    """One sampled response: its text and the token counts an OpenAI-style ``usage`` block reports."""

    text: str
    completion_tokens: int
    finish_reason: Literal["stop", "length"]


class Generator(Protocol):
    """Anything that samples ``n`` responses per prompt; ``id`` names it as the source of its candidates."""

    @property
    def id(self) -> str: ...

    def generate(self, prompts: Sequence[ChatPrompt], n: int = 1, temperature: float = 1.0, top_p: float = 1.0,
                 max_new_tokens: int = 128, seed: int | None = 0) -> list[list[str]]: ...


def as_chat(prompt: ChatPrompt) -> Chat:
    """A plain prompt becomes one user turn."""
    return [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)
