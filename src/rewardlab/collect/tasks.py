"""Annotation task types: what an item shows, what a label must look like, and what it means as feedback.

Labels are stored in *canonical* terms (response indices as imported), never in screen positions; the order
the responses were shown in is stored beside each label, so position bias can be measured afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rewardlab.errors import RewardlabError

TASK_TYPES = ("pairwise", "ranking", "rating", "binary", "correction", "critique", "steps")
MAX_TEXT = 20_000  # characters in a prompt, response, correction or critique
MAX_RESPONSES = 10  # responses per item (ranking); pairwise has exactly 2
STEP_VALUES = (-1, 0, 1)  # bad / neutral / good


class LabelError(RewardlabError, ValueError):
    """A submitted label does not fit its task; the message says which field and why."""


@dataclass(frozen=True)
class TaskSpec:
    """How many responses an item of this type shows, and which agreement level its labels have."""

    responses: tuple[int, int]  # (min, max)
    agreement_level: str | None  # nominal / ordinal / None (free text)


TASKS: dict[str, TaskSpec] = {
    "pairwise": TaskSpec((2, 2), "ordinal"),  # b < tie < a
    "ranking": TaskSpec((2, MAX_RESPONSES), "ordinal"),  # agreement on each response's rank
    "rating": TaskSpec((1, 1), "ordinal"),
    "binary": TaskSpec((1, 1), "nominal"),
    "correction": TaskSpec((1, 1), None),
    "critique": TaskSpec((1, 1), None),
    "steps": TaskSpec((1, 1), "ordinal"),
}


def check_task_type(task_type: str) -> str:
    if task_type not in TASKS:
        raise LabelError(f"unknown task type {task_type!r}; choose from {', '.join(TASK_TYPES)}")
    return task_type


def check_item(task_type: str, payload: dict[str, Any]) -> dict[str, Any]:
    """Validate an item's payload {prompt, responses[, steps]} for ``task_type``; returns it normalised."""
    prompt, responses = payload.get("prompt"), payload.get("responses")
    if not isinstance(prompt, str) or not prompt.strip():
        raise LabelError("field 'prompt': must be non-empty text")
    if not isinstance(responses, list) or not all(isinstance(r, str) for r in responses):
        raise LabelError("field 'responses': must be a list of texts")
    low, high = TASKS[task_type].responses
    if not low <= len(responses) <= high:
        raise LabelError(f"field 'responses': a {task_type} item needs {low}–{high} responses, got {len(responses)}")
    if max(len(prompt), *(len(r) for r in responses)) > MAX_TEXT:
        raise LabelError(f"prompt or response longer than {MAX_TEXT} characters")
    item = {"prompt": prompt, "responses": responses}
    if task_type == "steps":
        steps = payload.get("steps") or [line for line in responses[0].split("\n") if line.strip()]
        if not isinstance(steps, list) or not steps or not all(isinstance(s, str) for s in steps):
            raise LabelError("field 'steps': must be a non-empty list of texts")
        item["steps"] = steps
    return item


def check_label(task_type: str, config: dict[str, Any], item: dict[str, Any], value: Any) -> dict[str, Any]:
    """Validate a submitted label against its task and item; returns the canonical value to store."""
    if not isinstance(value, dict):
        raise LabelError("field 'value': must be an object")
    n = len(item["responses"])
    if task_type == "pairwise":
        choice, strength = value.get("choice"), value.get("strength")
        if choice not in ("a", "b", "tie"):
            raise LabelError("field 'value.choice': must be 'a', 'b' or 'tie'")
        if strength is not None and (not isinstance(strength, int | float) or not 0 <= strength <= 1):
            raise LabelError("field 'value.strength': must be a number in [0, 1]")
        return {"choice": choice, **({"strength": float(strength)} if strength is not None else {})}
    if task_type == "ranking":
        order = value.get("order")
        if not isinstance(order, list) or sorted(order) != list(range(n)):
            raise LabelError(f"field 'value.order': must be a permutation of 0..{n - 1} (best first)")
        return {"order": [int(i) for i in order]}
    if task_type == "rating":
        low, high = config.get("scale", [1, 5])
        score = value.get("score")
        if not isinstance(score, int) or isinstance(score, bool) or not low <= score <= high:
            raise LabelError(f"field 'value.score': must be a whole number from {low} to {high}")
        return {"score": score}
    if task_type == "binary":
        if not isinstance(value.get("correct"), bool):
            raise LabelError("field 'value.correct': must be true or false")
        return {"correct": value["correct"]}
    if task_type in ("correction", "critique"):
        text = value.get("text")
        if not isinstance(text, str) or not text.strip() or len(text) > MAX_TEXT:
            raise LabelError(f"field 'value.text': must be non-empty text of at most {MAX_TEXT} characters")
        return {"text": text}
    steps = value.get("steps")
    if (not isinstance(steps, list) or len(steps) != len(item["steps"])
            or not all(s in STEP_VALUES and not isinstance(s, bool) for s in steps)):
        raise LabelError(f"field 'value.steps': must give each of the {len(item['steps'])} steps -1, 0 or 1")
    return {"steps": [int(s) for s in steps]}


def agreement_units(task_type: str, value: dict[str, Any]) -> list[tuple[str, float | str]]:
    """The (unit suffix, value) pairs a label contributes to agreement statistics (none for free text)."""
    if task_type == "pairwise":
        return [("", {"a": 1.0, "tie": 0.0, "b": -1.0}[value["choice"]])]
    if task_type == "ranking":
        return [(f"#{response}", float(rank)) for rank, response in enumerate(value["order"])]
    if task_type == "rating":
        return [("", float(value["score"]))]
    if task_type == "binary":
        return [("", "correct" if value["correct"] else "incorrect")]
    if task_type == "steps":
        return [(f"#{i}", float(s)) for i, s in enumerate(value["steps"])]
    return []


def left_won(task_type: str, value: dict[str, Any], shown_order: list[int]) -> bool | None:
    """Pairwise only: was the response shown on the left preferred? None for ties and other tasks."""
    if task_type != "pairwise" or value["choice"] == "tie":
        return None
    return (0 if value["choice"] == "a" else 1) == shown_order[0]
