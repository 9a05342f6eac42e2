"""Embedding many texts through the cache: deduplicate, look up, embed only the misses, store them."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rewardlab.embed.base import Encoder
from rewardlab.embed.cache import EmbeddingCache
from rewardlab.errors import InvalidValueError


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


def unique_index(texts: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """(the distinct texts in order of first appearance, each text's row among them)."""
    position: dict[str, int] = {}
    inverse = np.fromiter((position.setdefault(t, len(position)) for t in texts), dtype=np.int64, count=len(texts))
    return list(position), inverse


def embed_unique(
    texts: Sequence[str],
    encoder: Encoder,
    *,
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
    chunk_size: int = 256,
    on_progress: Callable[[int, int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray, EmbedStats]:
    """(vectors of the distinct texts, each input text's row in them, stats): ``vectors[inverse]`` is `embed_texts`.

    Memory is one float32 row per distinct text. Cached vectors are copied straight into it (`EmbeddingCache.lookup`);
    the misses are embedded a chunk at a time, shortest first, and each chunk is stored as its own pack as soon as it
    is embedded, so a run that is stopped keeps its work and a re-run embeds only what is left.
    """
    started = time.perf_counter()
    unique, inverse = unique_index(texts)
    if on_progress:
        on_progress(0, len(unique))  # the total is known before the cache lookup, which takes a while on large sets
    cache = EmbeddingCache(encoder.fingerprint(), encoder.dim, cache_dir) if use_cache else None
    vectors = np.zeros((len(unique), encoder.dim), dtype=np.float32)
    found = cache.lookup(unique, vectors) if cache else np.zeros(len(unique), dtype=bool)
    hits = int(found.sum())
    # length-sorted, so each chunk (and each batch inside it) holds texts of similar length: little padding
    missing = sorted(np.flatnonzero(~found).tolist(), key=lambda i: len(unique[i]))
    if on_progress:
        on_progress(hits, len(unique))
    for start in range(0, len(missing), chunk_size):
        rows = missing[start : start + chunk_size]
        chunk = [unique[i] for i in rows]
        encoded = _encode_chunk(encoder, chunk)
        if cache:
            cache.put_many(chunk, encoded)  # stored per chunk, so an interrupted run keeps its work
        vectors[rows] = encoded
        if on_progress:
            on_progress(hits + start + len(chunk), len(unique))
    stats = EmbedStats(len(texts), len(unique), hits, len(missing), time.perf_counter() - started,
                       cache.corrupt_packs if cache else 0)
    return vectors, inverse, stats


def fill_cache(
    texts: Sequence[str],
    encoder: Encoder,
    *,
    cache_dir: str | Path | None = None,
    chunk_size: int = 256,
    on_progress: Callable[[int, int], None] | None = None,
) -> EmbedStats:
    """Embed whichever of ``texts`` the cache lacks into it, holding no vectors beyond one chunk: what ``rewardlab
    embed`` needs when the vectors are not written out (memory stays flat however many texts there are)."""
    started = time.perf_counter()
    unique = list(dict.fromkeys(texts))
    if on_progress:
        on_progress(0, len(unique))
    cache = EmbeddingCache(encoder.fingerprint(), encoder.dim, cache_dir)
    found = cache.lookup(unique)
    hits = done = int(found.sum())
    chunks = length_sorted_chunks([unique[i] for i in np.flatnonzero(~found).tolist()], chunk_size)
    if on_progress:
        on_progress(hits, len(unique))
    for chunk in chunks:
        cache.put_many(chunk, _encode_chunk(encoder, chunk))
        done += len(chunk)
        if on_progress:
            on_progress(done, len(unique))
    return EmbedStats(len(texts), len(unique), hits, done - hits, time.perf_counter() - started, cache.corrupt_packs)


def length_sorted_chunks(texts: Sequence[str], chunk_size: int) -> list[list[str]]:
    """Texts to embed, shortest first, ``chunk_size`` at a time: the chunks of `embed_unique` (which sorts row
    indices the same way), `fill_cache` and the Ray path, so every path embeds the same batches."""
    ordered = sorted(texts, key=len)
    return [ordered[start : start + chunk_size] for start in range(0, len(ordered), chunk_size)]


def _encode_chunk(encoder: Encoder, chunk: list[str]) -> np.ndarray:
    encoded = np.asarray(encoder.encode(chunk), dtype=np.float32)
    if encoded.shape != (len(chunk), encoder.dim):
        raise InvalidValueError(f"encoder {encoder.fingerprint()} returned vectors of shape {encoded.shape} for "
                                f"{len(chunk)} texts; expected {(len(chunk), encoder.dim)}")
    return encoded


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
    vectors, inverse, stats = embed_unique(texts, encoder, cache_dir=cache_dir, use_cache=use_cache,
                                           chunk_size=chunk_size, on_progress=on_progress)
    if len(vectors) == len(texts):  # no repeats: the rows are already in input order
        return vectors, stats
    return vectors[inverse], stats
