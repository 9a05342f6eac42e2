"""The defaults of a span reward model, and its light registries (context views, aggregations), apart from
`rewards.span_rewards` so that the command line reads them without importing torch."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from rewardlab.embed.base import DEFAULT_ENCODER
from rewardlab.errors import ModelError
from rewardlab.registry import Registry

#: per context mode, the blocks a span's feature row concatenates. Vectors: s (the span's text), l (its left
#: context: the response before it, i.e. through the previous span), c (the response through the span), r (the
#: whole response), p (the prompt's tail); ``a*b`` is their elementwise product and ``a.b`` their dot product (one
#: column: the cosine for unit-norm encoders), a similarity a linear head would otherwise have to learn weight by
#: weight: span-to-passages for grounding, span-to-what-came-before for redundancy. ``pos`` is where the span
#: starts, as a share of the response (answers that ramble do it at their end), ``start`` and ``len`` its start
#: and length (log characters). On QA-Feedback (minilm:int8, 5-fold cross-fitting by question, logistic heads; CIs
#: about ±0.03), held-out AUC relevance / factuality: span+left 0.650 / 0.642, span+response 0.653 / 0.622, span
#: (no position) 0.572 / 0.625, prefix 0.497 / 0.599, and the position control (no text) 0.644 / 0.567.
CONTEXT_MODES: Registry[tuple[str, ...]] = Registry("span context", ModelError)
CONTEXT_MODES.register("span+left", ("s", "l", "p", "s*p", "s.p", "s.l", "pos", "start", "len"))
CONTEXT_MODES.register("span+response", ("s", "r", "p", "s*p", "s.p", "s.r", "pos", "start", "len"))
CONTEXT_MODES.register("span", ("s", "p", "s*p", "s.p"))
CONTEXT_MODES.register("prefix", ("c", "p", "c*p", "c.p"))
#: the trivial control: where the span is and how long it is, no text at all (``start``, ``len``: log characters)
CONTEXT_MODES.register("position", ("pos", "start", "len"))
#: the parts that are one number per span, not an embedding
SCALAR_PARTS = ("pos", "start", "len")

#: (P(error) of each span of one kind, each span's length in characters) -> that kind's share of the response reward
SpanAggregation = Callable[[np.ndarray, np.ndarray], float]
SPAN_AGGREGATIONS: Registry[SpanAggregation] = Registry("span aggregation", ModelError)


def _length_weighted(p: np.ndarray, lengths: np.ndarray) -> float:
    return -float(np.dot(p, lengths) / lengths.sum()) if len(p) else 0.0


SPAN_AGGREGATIONS.register("length-weighted", _length_weighted)  # minus the expected share of text in error
SPAN_AGGREGATIONS.register("sum", lambda p, lengths: -float(p.sum()))  # minus the expected number of bad spans
SPAN_AGGREGATIONS.register("min", lambda p, lengths: -float(p.max()) if len(p) else 0.0)  # the worst span decides
SPAN_AGGREGATIONS.register("mean", lambda p, lengths: -float(p.mean()) if len(p) else 0.0)


@dataclass(frozen=True)
class SpanModelConfig:
    """What `SpanRewardModel.create` builds unless told otherwise."""

    #: the head of each error kind: one that learns from labels (a logistic output per kind by default)
    kind: str = "outcome-logistic"
    encoder: str = DEFAULT_ENCODER
    #: what a span's features see besides its own text (`CONTEXT_MODES`)
    context: str = "span+left"
    #: how span probabilities become the response's reward (`SPAN_AGGREGATIONS`), summed over kinds
    aggregate: str = "length-weighted"
    seed: int = 0
