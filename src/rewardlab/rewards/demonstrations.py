"""Rewards from demonstrations alone: a discriminator between demonstrations and policy samples.

Alignment from demonstrations (Sun & van der Schaar, 2024) reads a demonstration dataset as samples of
the target policy and the base model's own answers as samples of the current policy. A classifier
D(prompt, response) = P(target | prompt, response) then gives the reward r = log D / (1 − D), its logit:
the log density ratio between the two policies, which is what the KL-regularised RL objective needs.

Two contrasts are supported because they fail differently:

- *demonstrations vs base samples*: simple, but the classifier may learn "written by a person vs written
  by this small model" (length, style, truncation) instead of what makes a demonstration good;
- *fine-tuned samples vs base samples*: samples of the policy fine-tuned on the demonstrations against
  samples of the base policy. Both sides come from the same model family and the same decoder, so style
  artefacts of the demonstrators cancel and what remains is what the fine-tuning changed.

Either way the training data is a `FeedbackDataset` of correctness `Label`s (positive side = correct),
so the discriminator is an ordinary outcome head, saved and scored like any other reward model.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rewardlab.data.dataset import FeedbackDataset
from rewardlab.data.records import get_field, iter_records, require_text
from rewardlab.data.types import Demonstration, Label
from rewardlab.embed.base import DEFAULT_ENCODER
from rewardlab.errors import DataError, ModelError
from rewardlab.rewards.heads import HEAD_KINDS, kinds_learning_from
from rewardlab.rewards.model import RewardModel


@dataclass(frozen=True)
class Sample:
    """One (prompt, response) and where the response came from (``demonstration``, a generator id, ...)."""

    prompt: str
    response: str
    source: str = ""


def read_samples(path: str | Path, source: str = "", limit: int | None = None) -> list[Sample]:
    """(prompt, response) rows from JSONL/CSV/Parquet: ``{"prompt", "response"}`` records, or candidate sets
    ``{"prompt", "responses": [text | {"text", "source"}]}`` as `rewardlab generate run` writes them."""
    samples: list[Sample] = []
    for row, record in iter_records(path, limit):
        prompt = require_text(get_field(record, "prompt", source=path, row=row), source=path, row=row, field="prompt")
        if "responses" in record:
            responses = record["responses"]
            if not isinstance(responses, list) or not responses:
                raise DataError("'responses' must be a non-empty list", source=path, row=row, field="responses")
            for i, item in enumerate(responses):
                where = f"responses[{i}]"
                text = item.get("text") if isinstance(item, dict) else item
                origin = item.get("source", source) if isinstance(item, dict) else source
                samples.append(Sample(prompt, require_text(text, source=path, row=row, field=where), origin or source))
        else:
            response = get_field(record, "response", source=path, row=row)
            samples.append(Sample(prompt, require_text(response, source=path, row=row, field="response"), source))
    if not samples:
        raise DataError("no (prompt, response) rows", source=path)
    return samples


def discriminator_dataset(positives: Sequence[Sample], negatives: Sequence[Sample],
                          name: str = "demonstrations") -> FeedbackDataset:
    """Positives labelled correct, negatives incorrect; positives are also kept as `Demonstration` rows.

    A text that occurs on both sides (the base model reproduced a demonstration) keeps both labels, so
    the classifier sees the honest 50/50 rather than one side silently winning.
    """
    if not positives or not negatives:
        raise ModelError("a demonstration reward needs both positives (demonstrations) and negatives (policy samples)")
    dataset = FeedbackDataset(name)
    for sample, correct in [*((s, True) for s in positives), *((s, False) for s in negatives)]:
        pid = dataset.add_prompt(sample.prompt)
        rid = dataset.add_response(pid, sample.response, sample.source or None)
        dataset.add(Label(rid, correct, meta={"side": "positive" if correct else "negative"}))
        if correct:
            dataset.add(Demonstration(pid, sample.response, meta={"source": sample.source}))
    return dataset


def train_demonstration_reward(positives: Sequence[Sample], negatives: Sequence[Sample], kind: str = "outcome-logistic",
                               encoder: Any = DEFAULT_ENCODER, features: str = "interaction", seed: int = 0,
                               cache_dir: str | Path | None = None,
                               on_progress: Callable[[int, int], None] | None = None,
                               device: str | None = None, **params: Any) -> RewardModel:
    """Fit the discriminator; its score is the logit log D/(1 − D), larger = more like the positives. ``device``:
    where a torch head fits (None: the CPU; `rewardlab.rewards.head_device`)."""
    if kind not in HEAD_KINDS or HEAD_KINDS[kind].feedback != "labels":
        known = ", ".join(kinds_learning_from("labels"))
        raise ModelError(f"a demonstration reward is a classifier on labels: use one of {known}, not {kind!r}")
    dataset = discriminator_dataset(positives, negatives)
    model = RewardModel.create(kind, encoder=encoder, features=features, seed=seed, cache_dir=cache_dir, **params)
    model.fit(dataset, on_progress=on_progress, device=device)
    model.train_info["demonstration_reward"] = {"positives": len(positives), "negatives": len(negatives)}
    return model
