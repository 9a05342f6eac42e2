"""Synthetic training pairs that teach a reward model what human comparisons rarely show it.

``off-topic``: a good response to this prompt ≻ a good response to a *similar but different* prompt (its nearest
neighbours by prompt embedding, from the model's own encoder): cross-prompt hard negatives for relevance.
``truncated``: a good response ≻ itself cut at a sentence (else word) boundary to 30–60% of its length.
``padded``: a good response ≻ itself with one of its own sentences repeated (length without content).

Rules every augmenter keeps:

- only the data it is given is used (so augmenting a training fold never sees a test prompt);
- a "good" response is the winner of one of the prompt's original comparisons (or ranking pairs), never a loser,
  a tie side or a synthetic row;
- an augmented pair is about one prompt, and an off-topic response comes from another prompt whose text differs
  (after normalization) and is never the text of one of this prompt's own responses;
- every synthetic row says so: ``meta["augment"]`` names its kind, its annotator is ``synthetic:<kind>``, its new
  response's ``source`` is ``augment:<kind>``, and the dataset's notes count them.

A spec reads ``kind[:ratio],...``; ratio = augmented pairs per original comparison (default 0.5). When the data holds
fewer candidates than asked, as many as there are are added and the note says so.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rewardlab.data.dataset import FeedbackDataset
from rewardlab.data.types import Comparison, response_id_for
from rewardlab.embed.base import Encoder
from rewardlab.embed.embedding import embed_texts
from rewardlab.errors import InvalidValueError
from rewardlab.registry import Registry
from rewardlab.rewards.features import prompt_view

DEFAULT_RATIO = 0.5
MAX_RATIO = 10.0
#: off-topic: how many nearest prompts each prompt may borrow a response from
NEIGHBOURS = 8
#: off-topic: prompts at least this similar are near-duplicates whose answers may well fit, so they are never used
MAX_NEIGHBOUR_SIMILARITY = 0.98
#: truncated: the kept part is this share of the response's characters
TRUNCATE_RANGE = (0.3, 0.6)
#: truncated: shorter responses are left alone (a cut of a few words says little)
MIN_TRUNCATE_WORDS = 10
#: padded: the repeated sentence has at least this many words
MIN_PAD_SENTENCE_WORDS = 3

META_KEY = "augment"
ANNOTATOR_PREFIX = "synthetic:"

_SENTENCE = re.compile(r"\S[^\n]*?(?:[.!?]+(?=\s|$)|(?=\n)|$)")


@dataclass(frozen=True)
class AugmentSpec:
    """One kind of augmentation and how many pairs per original comparison it adds."""

    kind: str
    ratio: float = DEFAULT_RATIO

    def __str__(self) -> str:
        return f"{self.kind}:{self.ratio:g}"


@dataclass
class _Context:
    """What every augmenter reads: the data (being extended), its winners, a seeded generator."""

    dataset: FeedbackDataset
    winners: dict[str, list[str]]  # prompt id -> ids of responses that won an original comparison, sorted
    rng: np.random.Generator
    encoder: Encoder
    cache_dir: str | Path | None


#: (context, how many pairs) -> the comparisons to add (their new responses already added to context.dataset)
Augmenter = Callable[[_Context, int], list[Comparison]]
AUGMENTERS: Registry[Augmenter] = Registry("augmentation", InvalidValueError)


def parse_augment(spec: str) -> list[AugmentSpec]:
    """``"off-topic:0.5,truncated:0.2"`` -> specs; a missing ratio is `DEFAULT_RATIO`. Bad specs: `InvalidValueError`."""
    if not isinstance(spec, str) or not spec.strip():
        raise InvalidValueError(f"empty augmentation spec; expected kind[:ratio],... with kinds {', '.join(AUGMENTERS)}")
    specs: list[AugmentSpec] = []
    for item in spec.split(","):
        kind, sep, ratio_text = (part.strip() for part in item.partition(":"))
        if not kind:
            raise InvalidValueError(f"augmentation spec {spec!r} has an empty item; expected kind[:ratio],...")
        if kind not in AUGMENTERS:
            raise InvalidValueError(f"unknown augmentation {kind!r} in {spec!r}; known: {', '.join(AUGMENTERS)}")
        ratio = DEFAULT_RATIO
        if sep:
            try:
                ratio = float(ratio_text)
            except ValueError:
                raise InvalidValueError(f"augmentation {kind!r}: ratio {ratio_text!r} is not a number") from None
            if not math.isfinite(ratio) or not 0.0 < ratio <= MAX_RATIO:
                raise InvalidValueError(f"augmentation {kind!r}: ratio must be in (0, {MAX_RATIO:g}] "
                                        f"(augmented pairs per original comparison), got {ratio_text!r}")
        if any(s.kind == kind for s in specs):
            raise InvalidValueError(f"augmentation {kind!r} is given twice in {spec!r}")
        specs.append(AugmentSpec(kind, ratio))
    return specs


def format_augment(specs: list[AugmentSpec]) -> str:
    """The canonical spec string of ``specs`` (what a model's config.json stores)."""
    return ",".join(str(s) for s in specs)


def is_synthetic(row: Comparison) -> bool:
    """Whether a comparison was added by augmentation."""
    return META_KEY in row.meta


def augment_counts(dataset: FeedbackDataset) -> dict[str, int]:
    """Augmented comparisons in ``dataset`` by kind."""
    return dict(Counter(str(c.meta[META_KEY]) for c in dataset.comparisons if is_synthetic(c)))


def augment_dataset(dataset: FeedbackDataset, specs: list[AugmentSpec] | str, encoder: Encoder, *, seed: int = 0,
                    cache_dir: str | Path | None = None) -> FeedbackDataset:
    """A new dataset: ``dataset``'s rows plus the augmented prompts' responses and comparisons (``dataset`` is unchanged).

    ``encoder`` embeds the prompts (through the cache) to find each one's neighbours for ``off-topic``.
    """
    if isinstance(specs, str):
        specs = parse_augment(specs)
    out = dataset.subset(set(dataset.prompts), dataset.name)  # a copy: new tables, the same (frozen) rows
    base = sum(1 for c in dataset.comparisons if not is_synthetic(c)) + sum(
        len(r.response_ids) * (len(r.response_ids) - 1) // 2 for r in dataset.rankings)
    context = _Context(out, _winners(dataset), np.random.default_rng(seed), encoder, cache_dir)
    added = []
    for spec in specs:
        wanted = int(round(spec.ratio * base))
        rows = AUGMENTERS.lookup(spec.kind)(context, wanted) if wanted else []
        for row in rows:
            out.add(row)
        short = f" of {wanted} asked (the data has no more candidates)" if len(rows) < wanted else ""
        added.append(f"{len(rows)} {spec.kind}{short}")
    out.notes.append(f"augmented ({format_augment(specs)}, seed {seed}): + {', '.join(added)} synthetic comparisons "
                     f"(meta '{META_KEY}', annotator '{ANNOTATOR_PREFIX}<kind>')")
    return out


# ---------------------------------------------------------------------------------------------------- helpers
def _winners(dataset: FeedbackDataset) -> dict[str, list[str]]:
    found: dict[str, set[str]] = {}
    for c in dataset.comparisons:
        if c.outcome != "tie" and not is_synthetic(c):
            found.setdefault(c.prompt_id, set()).add(c.a if c.outcome == "a" else c.b)
    for ranking in dataset.rankings:
        for rid in ranking.response_ids[:-1]:  # each beats the ones after it
            found.setdefault(ranking.prompt_id, set()).add(rid)
    return {pid: sorted(rids) for pid, rids in sorted(found.items())}


def _comparison(context: _Context, prompt_id: str, good: str, bad: str, kind: str, **meta: object) -> Comparison:
    """``good`` ≻ ``bad``, with the sides in random order (a learner should not see the winner always first)."""
    tags = {META_KEY: kind, **meta}
    if context.rng.random() < 0.5:
        return Comparison(prompt_id, good, bad, "a", annotator_id=ANNOTATOR_PREFIX + kind, meta=tags)
    return Comparison(prompt_id, bad, good, "b", annotator_id=ANNOTATOR_PREFIX + kind, meta=tags)


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence: ends at . ! ? before whitespace, at a line break, or at the end."""
    return [m.span() for m in _SENTENCE.finditer(text)]


def truncate(text: str, fraction: float) -> str | None:
    """``text`` cut near ``fraction`` of its length, at a sentence end within `TRUNCATE_RANGE` if there is one, else at
    a word boundary in it; None for texts too short to cut meaningfully."""
    if len(text.split()) < MIN_TRUNCATE_WORDS:
        return None
    low, high = (share * len(text) for share in TRUNCATE_RANGE)
    target = fraction * len(text)
    ends = [end for _, end in sentence_spans(text)[:-1] if low <= end <= high]
    if not ends:
        ends = [m.start() for m in re.finditer(r"\s+", text) if low <= m.start() <= high]
    if not ends:
        return None
    cut = text[: min(ends, key=lambda end: abs(end - target))].rstrip()
    return cut if cut and len(cut) < len(text.rstrip()) else None


def pad(text: str, rng: np.random.Generator) -> str | None:
    """``text`` with one of its sentences (of `MIN_PAD_SENTENCE_WORDS` words or more) repeated right after itself."""
    spans = [(s, e) for s, e in sentence_spans(text) if len(text[s:e].split()) >= MIN_PAD_SENTENCE_WORDS]
    if not spans:
        return None
    start, end = spans[int(rng.integers(len(spans)))]
    return text[:end] + " " + text[start:end] + text[end:]


def _new_response(context: _Context, prompt_id: str, text: str, kind: str) -> str | None:
    """Add ``text`` as a synthetic response to ``prompt_id``; None if the prompt already has a response with that text."""
    if response_id_for(prompt_id, text) in context.dataset.responses:
        return None
    return context.dataset.add_response(prompt_id, text, source=f"augment:{kind}")


def _winner_responses(context: _Context) -> list[str]:
    """Every winner once, in a seeded random order."""
    ids = [rid for rids in context.winners.values() for rid in rids]
    return [ids[i] for i in context.rng.permutation(len(ids))]


# ---------------------------------------------------------------------------------------------------- augmenters
@AUGMENTERS.register("truncated")
def _truncated(context: _Context, wanted: int) -> list[Comparison]:
    rows: list[Comparison] = []
    for rid in _winner_responses(context):
        if len(rows) == wanted:
            break
        response = context.dataset.responses[rid]
        cut = truncate(response.text, float(context.rng.uniform(*TRUNCATE_RANGE)))
        new = None if cut is None else _new_response(context, response.prompt_id, cut, "truncated")
        if new is not None:
            rows.append(_comparison(context, response.prompt_id, rid, new, "truncated", source_response=rid))
    return rows


@AUGMENTERS.register("padded")
def _padded(context: _Context, wanted: int) -> list[Comparison]:
    rows: list[Comparison] = []
    for rid in _winner_responses(context):
        if len(rows) == wanted:
            break
        response = context.dataset.responses[rid]
        padded = pad(response.text, context.rng)
        new = None if padded is None else _new_response(context, response.prompt_id, padded, "padded")
        if new is not None:
            rows.append(_comparison(context, response.prompt_id, rid, new, "padded", source_response=rid))
    return rows


@AUGMENTERS.register("off-topic")
def _off_topic(context: _Context, wanted: int) -> list[Comparison]:
    dataset = context.dataset
    pids = list(context.winners)
    if len(pids) < 2:
        return []
    neighbours, similarity = nearest_prompts(dataset, pids, context.encoder, cache_dir=context.cache_dir)
    rows: list[Comparison] = []
    for rank in range(neighbours.shape[1]):  # every prompt's nearest first, then every prompt's second, ...
        for i in context.rng.permutation(len(pids)):
            if len(rows) == wanted:
                return rows
            j = int(neighbours[i, rank])
            if j < 0:
                continue
            pid, other = pids[i], pids[j]
            source = context.winners[other][int(context.rng.integers(len(context.winners[other])))]
            new = _new_response(context, pid, dataset.responses[source].text, "off-topic")
            if new is None:  # this prompt has a response with that very text: not off-topic
                continue
            good = context.winners[pid][int(context.rng.integers(len(context.winners[pid])))]
            rows.append(_comparison(context, pid, good, new, "off-topic", source_prompt=other, source_response=source,
                                    similarity=round(float(similarity[i, rank]), 4)))
    return rows


def nearest_prompts(dataset: FeedbackDataset, pids: list[str], encoder: Encoder, *, k: int = NEIGHBOURS,
                    cache_dir: str | Path | None = None, block: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """For each prompt in ``pids``: the indices (into ``pids``) of its ``k`` most similar other prompts by cosine of
    the embedded prompt tails, most similar first, and their similarities. Prompts of the same duplicate group and
    near-duplicates (≥ `MAX_NEIGHBOUR_SIMILARITY`) are never neighbours; missing neighbours are -1."""
    vectors, _ = embed_texts([prompt_view(dataset.prompts[p].text) for p in pids], encoder, cache_dir=cache_dir)
    vectors = vectors.astype(np.float64)
    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    groups = dataset.prompt_groups()
    group_index = {g: n for n, g in enumerate(sorted({groups[p] for p in pids}))}
    group = np.array([group_index[groups[p]] for p in pids])
    k = min(k, len(pids) - 1)
    neighbours = np.full((len(pids), k), -1, dtype=np.int64)
    similarity = np.full((len(pids), k), -np.inf)
    for start in range(0, len(pids), block):
        sims = vectors[start : start + block] @ vectors.T
        rows = np.arange(sims.shape[0])
        sims[group[start : start + block, None] == group[None, :]] = -np.inf  # itself and its duplicates
        sims[sims >= MAX_NEIGHBOUR_SIMILARITY] = -np.inf
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        top = np.take_along_axis(top, np.argsort(-sims[rows[:, None], top], axis=1, kind="stable"), axis=1)
        top_sims = sims[rows[:, None], top]
        neighbours[start : start + block] = np.where(np.isfinite(top_sims), top, -1)
        similarity[start : start + block] = top_sims
    return neighbours, similarity
