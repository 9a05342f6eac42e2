"""A solution read as a sequence of reasoning steps, by line or by sentence.

A process reward model judges each step in the context of the steps before it, so what it embeds is a *prefix*
of the solution: everything up to and including step k. Steps are kept as character spans of the original text,
so a prefix is an exact slice of it and the prefix of the last step is the solution itself (less trailing
blanks): a process model and an outcome model then embed the very same text for the whole solution, and the
embedding cache serves both.

``line`` steps are the non-blank lines, as the annotation service's ``steps`` task shows them (its labels line up
step for step); ``sentence`` steps split each line further after ``.``, ``!`` or ``?`` followed by a blank, so a
decimal point (``3.5``) never ends a step but an abbreviation (``Mr. Smith``) does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rewardlab.errors import InvalidValueError

#: the ways a solution is cut into steps
SPLIT_MODES = ("line", "sentence")

_LINE = re.compile(r"[^\n]+")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


@dataclass(frozen=True)
class Step:
    """Step ``index`` of a solution: ``text`` is ``solution[start:end]``, stripped of surrounding blanks."""

    index: int
    text: str
    start: int
    end: int


def check_split(by: str) -> None:
    if by not in SPLIT_MODES:
        raise InvalidValueError(f"unknown step split {by!r}; known: {', '.join(SPLIT_MODES)}")


def _stripped_span(text: str, start: int, end: int) -> tuple[int, int] | None:
    piece = text[start:end]
    if not piece.strip():
        return None
    return start + len(piece) - len(piece.lstrip()), end - (len(piece) - len(piece.rstrip()))


def split_steps(text: str, by: str = "line") -> list[Step]:
    """The steps of ``text`` in order (an empty or blank text has none)."""
    check_split(by)
    spans: list[tuple[int, int]] = []
    for line in _LINE.finditer(text):
        pieces = [(line.start(), line.end())]
        if by == "sentence":
            cuts = [m for m in _SENTENCE_END.finditer(line.group())]
            bounds = [line.start()] + [line.start() + m.end() for m in cuts]
            ends = [line.start() + m.start() for m in cuts] + [line.end()]
            pieces = list(zip(bounds, ends))
        spans.extend(span for a, b in pieces if (span := _stripped_span(text, a, b)) is not None)
    return [Step(i, text[a:b], a, b) for i, (a, b) in enumerate(spans)]


def step_prefixes(text: str, by: str = "line") -> list[str]:
    """For each step k, the solution up to and including step k (an exact slice of ``text``)."""
    return [text[:step.end] for step in split_steps(text, by)]


def count_steps(text: str, by: str = "line") -> int:
    return len(split_steps(text, by))
