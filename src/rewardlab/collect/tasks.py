"""Annotation task types: what an item shows, what a label must look like, and what it means as feedback.

Labels are stored in *canonical* terms (response indices as imported), never in screen positions; the order
the responses were shown in is stored beside each label, so position bias can be measured afterwards.

Each task type is one `TaskType` subclass registered in `TASK_TYPES` (the ``@register_task_type`` decorator);
the store, item import, export and statistics ask it rather than branching on its name. A new type also
needs a renderer in the web app (``ui/app.js``, ``renderers[name]``).
"""

from __future__ import annotations

import itertools
from typing import Any, ClassVar, TypeVar

import numpy as np

from rewardlab.data.dataset import FeedbackDataset
from rewardlab.data.types import Comparison, Correction, Critique, Label, Ranking, Rating, StepLabel
from rewardlab.errors import RewardlabError
from rewardlab.registry import Registry

MAX_TEXT = 20_000  # characters in a prompt, response, correction or critique
MAX_RESPONSES = 10  # responses per item (ranking); pairwise has exactly 2
STEP_VALUES = (-1, 0, 1)  # bad / neutral / good


class LabelError(RewardlabError, ValueError):
    """A submitted label does not fit its task; the message says which field and why."""


class TaskType:
    """One kind of annotation task. Subclasses set the class attributes and override what differs."""

    name: ClassVar[str] = ""
    responses: ClassVar[tuple[int, int]] = (1, 1)  # (min, max) responses an item shows
    agreement_level: ClassVar[str | None] = None  # nominal / ordinal / None (free text: no agreement)

    def check_config(self, config: dict[str, Any]) -> dict[str, Any]:
        """The project settings this task needs, defaults filled in (raises `LabelError`)."""
        return config

    def payloads(self, prompt: str, responses: list[str], steps: list[str] | None, pairs_per_prompt: int | None,
                 rng: np.random.Generator) -> list[dict[str, Any]]:
        """The items one imported group (a prompt and its responses) becomes: by default each distinct
        response on its own."""
        return [{"prompt": prompt, "responses": [text], **({"steps": steps} if steps else {})}
                for text in dict.fromkeys(responses)]

    def check_item(self, item: dict[str, Any], payload: dict[str, Any]) -> dict[str, Any]:
        """Task-specific fields of an item, after the common checks (prompt, responses) passed."""
        return item

    def check_label(self, config: dict[str, Any], item: dict[str, Any], value: dict[str, Any]) -> dict[str, Any]:
        """The canonical value to store for a submitted ``value`` (an object), or `LabelError`."""
        raise NotImplementedError

    def agreement_units(self, value: dict[str, Any]) -> list[tuple[str, float | str]]:
        """The (unit suffix, value) pairs a label contributes to agreement statistics (none for free text)."""
        return []

    def left_won(self, value: dict[str, Any], shown_order: list[int]) -> bool | None:
        """Was the response shown on the left preferred? None where the question does not apply."""
        return None

    def add_feedback(self, dataset: FeedbackDataset, payload: dict[str, Any], value: dict[str, Any],
                     config: dict[str, Any], prompt_id: str, response_ids: list[str], who: str | None,
                     meta: dict[str, Any]) -> None:
        """Add one stored label to ``dataset`` as feedback rows."""
        raise NotImplementedError


TASK_TYPES: Registry[TaskType] = Registry("task type", LabelError)
#: the same registry under its older name (``TASKS[name].responses``, ``.agreement_level``)
TASKS = TASK_TYPES

T = TypeVar("T", bound=TaskType)


def register_task_type(cls: type[T]) -> type[T]:
    """Class decorator: make ``cls`` available as task type ``cls.name``."""
    TASK_TYPES.register(cls.name, cls())
    return cls


def _text_value(value: dict[str, Any]) -> dict[str, Any]:
    text = value.get("text")
    if not isinstance(text, str) or not text.strip() or len(text) > MAX_TEXT:
        raise LabelError(f"field 'value.text': must be non-empty text of at most {MAX_TEXT} characters")
    return {"text": text}


@register_task_type
class PairwiseTask(TaskType):
    name = "pairwise"
    responses = (2, 2)
    agreement_level = "ordinal"  # b < tie < a

    def payloads(self, prompt: str, responses: list[str], steps: list[str] | None, pairs_per_prompt: int | None,
                 rng: np.random.Generator) -> list[dict[str, Any]]:
        """Every pair of distinct responses, or ``pairs_per_prompt`` of them at random."""
        pairs = [pair for pair in itertools.combinations(range(len(responses)), 2)
                 if responses[pair[0]] != responses[pair[1]]]
        if pairs_per_prompt is not None and len(pairs) > pairs_per_prompt:
            pairs = [pairs[i] for i in sorted(rng.choice(len(pairs), pairs_per_prompt, replace=False))]
        return [{"prompt": prompt, "responses": [responses[i], responses[j]]} for i, j in pairs]

    def check_label(self, config: dict[str, Any], item: dict[str, Any], value: dict[str, Any]) -> dict[str, Any]:
        choice, strength = value.get("choice"), value.get("strength")
        if choice not in ("a", "b", "tie"):
            raise LabelError("field 'value.choice': must be 'a', 'b' or 'tie'")
        if strength is not None and (not isinstance(strength, int | float) or isinstance(strength, bool)
                                     or not 0 <= strength <= 1):  # true is not 1.0
            raise LabelError("field 'value.strength': must be a number in [0, 1]")
        return {"choice": choice, **({"strength": float(strength)} if strength is not None else {})}

    def agreement_units(self, value: dict[str, Any]) -> list[tuple[str, float | str]]:
        return [("", {"a": 1.0, "tie": 0.0, "b": -1.0}[value["choice"]])]

    def left_won(self, value: dict[str, Any], shown_order: list[int]) -> bool | None:
        if value["choice"] == "tie":
            return None
        return (0 if value["choice"] == "a" else 1) == shown_order[0]

    def add_feedback(self, dataset: FeedbackDataset, payload: dict[str, Any], value: dict[str, Any],
                     config: dict[str, Any], prompt_id: str, response_ids: list[str], who: str | None,
                     meta: dict[str, Any]) -> None:
        dataset.add(Comparison(prompt_id, response_ids[0], response_ids[1], value["choice"], value.get("strength"),
                               annotator_id=who, meta=meta))


@register_task_type
class RankingTask(TaskType):
    name = "ranking"
    responses = (2, MAX_RESPONSES)
    agreement_level = "ordinal"  # agreement on each response's rank

    def payloads(self, prompt: str, responses: list[str], steps: list[str] | None, pairs_per_prompt: int | None,
                 rng: np.random.Generator) -> list[dict[str, Any]]:
        return [{"prompt": prompt, "responses": responses}]

    def check_label(self, config: dict[str, Any], item: dict[str, Any], value: dict[str, Any]) -> dict[str, Any]:
        n = len(item["responses"])
        order = value.get("order")
        if not isinstance(order, list) or sorted(order) != list(range(n)):
            raise LabelError(f"field 'value.order': must be a permutation of 0..{n - 1} (best first)")
        return {"order": [int(i) for i in order]}

    def agreement_units(self, value: dict[str, Any]) -> list[tuple[str, float | str]]:
        return [(f"#{response}", float(rank)) for rank, response in enumerate(value["order"])]

    def add_feedback(self, dataset: FeedbackDataset, payload: dict[str, Any], value: dict[str, Any],
                     config: dict[str, Any], prompt_id: str, response_ids: list[str], who: str | None,
                     meta: dict[str, Any]) -> None:
        dataset.add(Ranking(prompt_id, tuple(response_ids[i] for i in value["order"]), annotator_id=who, meta=meta))


@register_task_type
class RatingTask(TaskType):
    name = "rating"
    agreement_level = "ordinal"

    def check_config(self, config: dict[str, Any]) -> dict[str, Any]:
        low, high = config.setdefault("scale", [1, 5])
        if not (isinstance(low, int) and isinstance(high, int) and low < high):
            raise LabelError("rating scale must be two whole numbers, low < high")
        return config

    def check_label(self, config: dict[str, Any], item: dict[str, Any], value: dict[str, Any]) -> dict[str, Any]:
        low, high = config.get("scale", [1, 5])
        score = value.get("score")
        if not isinstance(score, int) or isinstance(score, bool) or not low <= score <= high:
            raise LabelError(f"field 'value.score': must be a whole number from {low} to {high}")
        return {"score": score}

    def agreement_units(self, value: dict[str, Any]) -> list[tuple[str, float | str]]:
        return [("", float(value["score"]))]

    def add_feedback(self, dataset: FeedbackDataset, payload: dict[str, Any], value: dict[str, Any],
                     config: dict[str, Any], prompt_id: str, response_ids: list[str], who: str | None,
                     meta: dict[str, Any]) -> None:
        dataset.add(Rating(response_ids[0], value["score"], tuple(config["scale"]), annotator_id=who, meta=meta))


@register_task_type
class BinaryTask(TaskType):
    name = "binary"
    agreement_level = "nominal"

    def check_label(self, config: dict[str, Any], item: dict[str, Any], value: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(value.get("correct"), bool):
            raise LabelError("field 'value.correct': must be true or false")
        return {"correct": value["correct"]}

    def agreement_units(self, value: dict[str, Any]) -> list[tuple[str, float | str]]:
        return [("", "correct" if value["correct"] else "incorrect")]

    def add_feedback(self, dataset: FeedbackDataset, payload: dict[str, Any], value: dict[str, Any],
                     config: dict[str, Any], prompt_id: str, response_ids: list[str], who: str | None,
                     meta: dict[str, Any]) -> None:
        dataset.add(Label(response_ids[0], value["correct"], annotator_id=who, meta=meta))


class TextTask(TaskType):
    """A free-text label about one response, stored as ``row_type(response_id, text)``."""

    row_type: ClassVar[type[Correction] | type[Critique]]

    def check_label(self, config: dict[str, Any], item: dict[str, Any], value: dict[str, Any]) -> dict[str, Any]:
        return _text_value(value)

    def add_feedback(self, dataset: FeedbackDataset, payload: dict[str, Any], value: dict[str, Any],
                     config: dict[str, Any], prompt_id: str, response_ids: list[str], who: str | None,
                     meta: dict[str, Any]) -> None:
        dataset.add(self.row_type(response_ids[0], value["text"], annotator_id=who, meta=meta))


@register_task_type
class CorrectionTask(TextTask):
    name = "correction"
    row_type = Correction


@register_task_type
class CritiqueTask(TextTask):
    name = "critique"
    row_type = Critique


@register_task_type
class StepsTask(TaskType):
    """Each reasoning step of one response judged good / neutral / bad (process supervision)."""

    name = "steps"
    agreement_level = "ordinal"

    def check_item(self, item: dict[str, Any], payload: dict[str, Any]) -> dict[str, Any]:
        steps = payload.get("steps") or [line for line in item["responses"][0].split("\n") if line.strip()]
        if not isinstance(steps, list) or not steps or not all(isinstance(s, str) for s in steps):
            raise LabelError("field 'steps': must be a non-empty list of texts")
        return {**item, "steps": steps}

    def check_label(self, config: dict[str, Any], item: dict[str, Any], value: dict[str, Any]) -> dict[str, Any]:
        steps = value.get("steps")
        if (not isinstance(steps, list) or len(steps) != len(item["steps"])
                or not all(s in STEP_VALUES and not isinstance(s, bool) for s in steps)):
            raise LabelError(f"field 'value.steps': must give each of the {len(item['steps'])} steps -1, 0 or 1")
        return {"steps": [int(s) for s in steps]}

    def agreement_units(self, value: dict[str, Any]) -> list[tuple[str, float | str]]:
        return [(f"#{i}", float(s)) for i, s in enumerate(value["steps"])]

    def add_feedback(self, dataset: FeedbackDataset, payload: dict[str, Any], value: dict[str, Any],
                     config: dict[str, Any], prompt_id: str, response_ids: list[str], who: str | None,
                     meta: dict[str, Any]) -> None:
        for step, step_value in enumerate(value["steps"]):
            dataset.add(StepLabel(response_ids[0], step, step_value, annotator_id=who,
                                  meta={**meta, "step_text": payload["steps"][step]}))


# ---------------------------------------------------------------------- by name (what the store calls)
def task_type(name: str) -> TaskType:
    """The registered task type ``name``, or a `LabelError` listing the known ones."""
    return TASK_TYPES.lookup(name)


def check_task_type(name: str) -> str:
    """Returns ``name`` if it is a registered task type (so it can be checked inline), else raises a `LabelError`."""
    task_type(name)
    return name


def check_item(name: str, payload: dict[str, Any]) -> dict[str, Any]:
    """Validate an item's payload {prompt, responses[, steps]} for task type ``name``; returns it normalised."""
    task = task_type(name)
    prompt, responses = payload.get("prompt"), payload.get("responses")
    if not isinstance(prompt, str) or not prompt.strip():
        raise LabelError("field 'prompt': must be non-empty text")
    if not isinstance(responses, list) or not all(isinstance(r, str) for r in responses):
        raise LabelError("field 'responses': must be a list of texts")
    low, high = task.responses
    if not low <= len(responses) <= high:
        raise LabelError(f"field 'responses': a {name} item needs {low}–{high} responses, got {len(responses)}")
    if max(len(prompt), *(len(r) for r in responses)) > MAX_TEXT:
        raise LabelError(f"prompt or response longer than {MAX_TEXT} characters")
    return task.check_item({"prompt": prompt, "responses": responses}, payload)


def check_label(name: str, config: dict[str, Any], item: dict[str, Any], value: Any) -> dict[str, Any]:
    """Validate a submitted label against its task and item; returns the canonical value to store."""
    if not isinstance(value, dict):
        raise LabelError("field 'value': must be an object")
    return task_type(name).check_label(config, item, value)


def agreement_units(name: str, value: dict[str, Any]) -> list[tuple[str, float | str]]:
    """The (unit suffix, value) pairs a label contributes to agreement statistics (none for free text)."""
    return task_type(name).agreement_units(value)


def left_won(name: str, value: dict[str, Any], shown_order: list[int]) -> bool | None:
    """Pairwise only: was the response shown on the left preferred? None for ties and other tasks."""
    return task_type(name).left_won(value, shown_order)

