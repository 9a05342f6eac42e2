"""Embedding large sets: an interrupted run keeps its packs and a re-run embeds only the rest, with the same vectors;
vectors are read from the cache into one matrix."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from rewardlab.embed import EmbeddingCache, HashingEncoder, embed_texts
from rewardlab.embed.embedding import embed_unique, fill_cache

TEXTS = [f"answer {i}: the {'quick ' * (i % 5)}fox jumps over dog {i % 13}" for i in range(1000)]


class StopsAfter(HashingEncoder):
    """Raises on its ``fail_at``-th call (None: never), as a run stopped mid-way does; records every text encoded."""

    def __init__(self, fail_at: int | None) -> None:
        super().__init__(dim=32)
        self.fail_at = fail_at
        self.calls = 0
        self.seen: list[str] = []

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += 1
        if self.fail_at is not None and self.calls == self.fail_at:
            raise KeyboardInterrupt
        self.seen += list(texts)
        return super().encode(texts)


def test_rerun_after_an_interruption_embeds_only_the_remainder(tmp_path: Path) -> None:
    first = StopsAfter(fail_at=5)
    with pytest.raises(KeyboardInterrupt):
        embed_texts(TEXTS, first, cache_dir=tmp_path, chunk_size=100)
    assert len(first.seen) == 400  # four whole chunks were embedded before the stop
    (tmp_path / "half-written").write_bytes(b"")  # stray files are not packs
    second = StopsAfter(fail_at=None)
    vectors, stats = embed_texts(TEXTS, second, cache_dir=tmp_path, chunk_size=100)
    assert (stats.hits, stats.misses) == (400, 600)
    assert sorted(second.seen) == sorted(set(TEXTS) - set(first.seen))  # nothing embedded twice
    assert np.array_equal(vectors, HashingEncoder(dim=32).encode(TEXTS))
    third = StopsAfter(fail_at=1)  # everything cached: the encoder is not called at all
    again, stats = embed_texts(TEXTS, third, cache_dir=tmp_path, chunk_size=100)
    assert stats.hits == len(TEXTS) and np.array_equal(again, vectors)


def test_a_killed_process_resumes_from_its_packs(tmp_path: Path) -> None:
    """A real process killed (SIGKILL) mid-run: the packs it wrote are whole, a second run embeds the rest."""
    code = (
        "import sys, time; from rewardlab.embed import HashingEncoder, embed_texts\n"
        "class Slow(HashingEncoder):\n"
        "    def encode(self, texts):\n"
        "        print('chunk', flush=True); time.sleep(0.2); return super().encode(texts)\n"
        "texts = [f'text {i} of many' for i in range(2000)]\n"
        "embed_texts(texts, Slow(dim=32), cache_dir=sys.argv[1], chunk_size=50)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    for _ in range(4):  # wait until a few chunks are done, then kill without warning
        assert proc.stdout.readline().startswith("chunk")
    time.sleep(0.3)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    texts = [f"text {i} of many" for i in range(2000)]
    encoder = StopsAfter(fail_at=None)
    vectors, stats = embed_texts(texts, encoder, cache_dir=tmp_path, chunk_size=50)
    assert 0 < stats.hits < len(texts) and stats.misses == len(texts) - stats.hits == len(encoder.seen)
    assert stats.corrupt_packs == 0
    assert np.array_equal(vectors, HashingEncoder(dim=32).encode(texts))


def test_lookup_fills_one_matrix_like_get_many(tmp_path: Path) -> None:
    encoder = HashingEncoder(dim=16)
    cache = EmbeddingCache(encoder.fingerprint(), encoder.dim, tmp_path)
    for start in range(0, 60, 20):
        cache.put_many(TEXTS[start : start + 20], encoder.encode(TEXTS[start : start + 20]))
    wanted = [TEXTS[5], "not cached", TEXTS[45], TEXTS[5], TEXTS[59]]
    out = np.full((len(wanted), 16), -1.0, dtype=np.float32)
    found = cache.lookup(wanted, out)
    assert found.tolist() == [True, False, True, True, True]
    assert (out[1] == -1.0).all()  # a miss leaves its row alone
    by_text = cache.get_many(wanted)
    for row, text in enumerate(wanted):
        if found[row]:
            assert np.array_equal(out[row], by_text[text])


def test_embed_unique_returns_each_distinct_text_once(tmp_path: Path) -> None:
    texts = ["b", "a", "b", "c", "a"]
    vectors, inverse, stats = embed_unique(texts, HashingEncoder(dim=8), cache_dir=tmp_path)
    assert vectors.shape == (3, 8) and inverse.tolist() == [0, 1, 0, 2, 1] and stats.unique == 3
    assert np.array_equal(vectors[inverse], HashingEncoder(dim=8).encode(texts))


def test_fill_cache_embeds_only_what_is_missing_and_resumes(tmp_path: Path) -> None:
    first = StopsAfter(fail_at=3)
    with pytest.raises(KeyboardInterrupt):
        fill_cache(TEXTS + TEXTS[:10], first, cache_dir=tmp_path, chunk_size=100)
    second = StopsAfter(fail_at=None)
    stats = fill_cache(TEXTS, second, cache_dir=tmp_path, chunk_size=100)
    assert (stats.unique, stats.hits, stats.misses) == (1000, 200, 800) and len(second.seen) == 800
    vectors, stats = embed_texts(TEXTS, StopsAfter(fail_at=1), cache_dir=tmp_path)
    assert stats.hits == 1000 and np.array_equal(vectors, HashingEncoder(dim=32).encode(TEXTS))
