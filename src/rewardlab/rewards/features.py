"""From embedded prompts and responses to the feature row a head sees.

Prompts and responses are embedded separately: a long dialogue embedded together with its answer would
be truncated at the encoder's limit and lose the answer. The prompt is embedded from its tail, where the
question being answered is.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from rewardlab.data.dataset import FeedbackDataset
from rewardlab.embed.base import Encoder
from rewardlab.embed.embedding import EmbedStats, embed_texts
from rewardlab.errors import ModelError

#: response: r; prompt+response: [r, p]; interaction: [r, p, r*p]
FEATURE_MODES = ("response", "prompt+response", "interaction")
PROMPT_TAIL_CHARS = 1000


def prompt_view(text: str, tail_chars: int = PROMPT_TAIL_CHARS) -> str:
    """The end of a long prompt (the latest turns), which is what the response answers."""
    return text if len(text) <= tail_chars else text[-tail_chars:]


def dataset_texts(dataset: FeedbackDataset) -> list[str]:
    """Every string featurizing ``dataset`` embeds: each response and the tail of each prompt (to pre-fill a cache)."""
    return [r.text for r in dataset.responses.values()] + [prompt_view(p.text) for p in dataset.prompts.values()]


def combine(prompt_vecs: np.ndarray, response_vecs: np.ndarray, mode: str) -> np.ndarray:
    """The feature rows for ``mode``: the response vectors alone, with the prompt's, or with the prompt's and their product."""
    if mode == "response":
        return response_vecs
    if mode == "prompt+response":
        return np.concatenate([response_vecs, prompt_vecs], axis=1)
    if mode == "interaction":
        return np.concatenate([response_vecs, prompt_vecs, response_vecs * prompt_vecs], axis=1)
    raise ModelError(f"unknown feature mode {mode!r}; known: {', '.join(FEATURE_MODES)}")


def feature_dim(encoder_dim: int, mode: str) -> int:
    """The width of a feature row in ``mode``: 1, 2 or 3 times the encoder's."""
    return {"response": 1, "prompt+response": 2, "interaction": 3}[mode] * encoder_dim


def featurize_texts(
    prompts: Sequence[str],
    responses: Sequence[str],
    encoder: Encoder,
    mode: str,
    *,
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
    on_progress: Callable[[int, int], None] | None = None,
) -> tuple[np.ndarray, EmbedStats]:
    """Feature rows for (prompt, response) pairs; prompts and responses go through one cached pass."""
    if len(prompts) != len(responses):
        raise ModelError(f"prompts and responses must have the same length, got {len(prompts)} and {len(responses)}")
    if mode not in FEATURE_MODES:
        raise ModelError(f"unknown feature mode {mode!r}; known: {', '.join(FEATURE_MODES)}")
    views = [prompt_view(p) for p in prompts] if mode != "response" else []
    vectors, stats = embed_texts(list(responses) + views, encoder, cache_dir=cache_dir, use_cache=use_cache,
                                 on_progress=on_progress)
    response_vecs = vectors[: len(responses)]
    prompt_vecs = vectors[len(responses) :] if views else np.zeros_like(response_vecs)
    return combine(prompt_vecs, response_vecs, mode).astype(np.float32), stats


def featurize_dataset(
    dataset: FeedbackDataset,
    encoder: Encoder,
    mode: str,
    **kwargs: object,
) -> tuple[dict[str, np.ndarray], EmbedStats]:
    """response id -> feature row, for every response in ``dataset``."""
    ids = list(dataset.responses)
    prompts = [dataset.prompts[dataset.responses[rid].prompt_id].text for rid in ids]
    responses = [dataset.responses[rid].text for rid in ids]
    x, stats = featurize_texts(prompts, responses, encoder, mode, **kwargs)  # type: ignore[arg-type]
    return dict(zip(ids, x)), stats
