"""Embedding many texts through the cache: deduplicate, look up, embed only the misses, store them."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rewardlab.embed.base import Encoder
from rewardlab.embed.cache import EmbeddingCache


@dataclass
class EmbedStats:
    texts: int
    unique: int
    hits: int
    misses: int
    seconds: float
    corrupt_packs: int = 0

    @property
    def hit_rate(self) -> float:
        """Cache hits as a share of the unique texts (1.0 when there were none)."""
        return self.hits / self.unique if self.unique else 1.0


def embed_texts(
    texts: Sequence[str],
    encoder: Encoder,
    *,
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
    chunk_size: int = 256,
    on_progress: Callable[[int, int], None] | None = None,
) -> tuple[np.ndarray, EmbedStats]:
    """Vectors for ``texts`` in input order; ``on_progress(done, total)`` counts unique texts."""
    started = time.perf_counter()
    unique = list(dict.fromkeys(texts))
    if on_progress:
        on_progress(0, len(unique))  # the total is known before the cache lookup, which takes a while on large sets
    cache = EmbeddingCache(encoder.fingerprint(), encoder.dim, cache_dir) if use_cache else None
    vectors: dict[str, np.ndarray] = cache.get_many(unique) if cache else {}
    hits = len(vectors)
    # length-sorted, so each chunk (and each batch inside it) holds texts of similar length: little padding
    missing = sorted((t for t in unique if t not in vectors), key=len)
    if on_progress:
        on_progress(hits, len(unique))
    for start in range(0, len(missing), chunk_size):
        chunk = missing[start : start + chunk_size]
        encoded = np.asarray(encoder.encode(chunk), dtype=np.float32)
        if cache:
            cache.put_many(chunk, encoded)  # stored per chunk, so an interrupted run keeps its work
        vectors.update(zip(chunk, encoded))
        if on_progress:
            on_progress(hits + start + len(chunk), len(unique))
    out = np.stack([vectors[t] for t in texts]) if texts else np.zeros((0, encoder.dim), np.float32)
    stats = EmbedStats(len(texts), len(unique), hits, len(missing), time.perf_counter() - started,
                       cache.corrupt_packs if cache else 0)
    return out, stats
