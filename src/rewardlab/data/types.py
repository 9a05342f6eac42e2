"""The feedback schema: prompts, responses and every kind of feedback about them.

Plain frozen dataclasses so they are cheap, typed and easy to build by hand. Every feedback row keeps
the annotator who gave it (when known) and free-form ``meta`` so nothing a collector knew is lost.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any, Literal

Outcome = Literal["a", "b", "tie"]
OUTCOMES: tuple[Outcome, ...] = ("a", "b", "tie")


@dataclass(frozen=True)
class Message:
    """One chat turn."""

    role: str
    content: str


@dataclass(frozen=True)
class Prompt:
    """What a response answers: plain text, optionally the chat messages it was rendered from."""

    id: str
    text: str
    messages: tuple[Message, ...] | None = None


@dataclass(frozen=True)
class Response:
    """One candidate answer to a prompt; ``source`` names the model or person that wrote it."""

    id: str
    prompt_id: str
    text: str
    source: str | None = None


@dataclass(frozen=True)
class Comparison:
    """Response ``a`` vs response ``b`` of the same prompt; ``outcome`` says which won (or a tie)."""

    prompt_id: str
    a: str
    b: str
    outcome: Outcome
    strength: float | None = None
    annotator_id: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.strength is not None:
            object.__setattr__(self, "strength", float(self.strength))


@dataclass(frozen=True)
class Ranking:
    """Responses of one prompt ordered best first."""

    prompt_id: str
    response_ids: tuple[str, ...]
    annotator_id: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Rating:
    """A scalar judgement of one response on a scale ``(low, high)``."""

    response_id: str
    value: float
    scale: tuple[float, float] | None = None
    annotator_id: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # numbers are stored as floats, so Rating(3) and a round-tripped Rating(3.0) are the same row
        object.__setattr__(self, "value", float(self.value))
        if self.scale is not None:
            object.__setattr__(self, "scale", (float(self.scale[0]), float(self.scale[1])))


@dataclass(frozen=True)
class Label:
    """Outcome supervision: is the response correct?"""

    response_id: str
    correct: bool
    annotator_id: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Correction:
    """An annotator's edited, better version of a response."""

    response_id: str
    corrected_text: str
    annotator_id: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Critique:
    """Free-text feedback on a response."""

    response_id: str
    text: str
    annotator_id: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StepLabel:
    """Process supervision: a judgement of step ``step`` (0-based) of a response."""

    response_id: str
    step: int
    value: float
    annotator_id: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "value", float(self.value))


@dataclass(frozen=True)
class Demonstration:
    """A reference answer written for a prompt (rewards from demonstrations)."""

    prompt_id: str
    text: str
    annotator_id: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


def _digest(*parts: str) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode("utf-8"))
        h.update(b"\x00")
    return h.hexdigest()[:16]


def prompt_id_for(text: str) -> str:
    """Content-addressed prompt id: the same exact text always gets the same id."""
    return "p_" + _digest(text)


def response_id_for(prompt_id: str, text: str) -> str:
    """Content-addressed response id, scoped to its prompt."""
    return "r_" + _digest(prompt_id, text)


_PUNCT = re.compile(r"[^\w\s]", re.UNICODE)
_SPACE = re.compile(r"\s+")


def normalize_prompt(text: str) -> str:
    """Canonical form used to detect duplicated prompts: case, punctuation and spacing are ignored."""
    return _SPACE.sub(" ", _PUNCT.sub(" ", text.casefold())).strip()
