"""The embedding cache: hits and misses, reuse across processes, concurrent writers, corruption."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from rewardlab.embed import EmbeddingCache, HashingEncoder, embed_texts, make_encoder
from rewardlab.errors import EncoderError

TEXTS = [f"response number {i} about topic {i % 7}" for i in range(50)]


class CountingEncoder(HashingEncoder):
    """Counts how many texts really reach the encoder."""

    def __init__(self) -> None:
        super().__init__(dim=32)
        self.encoded = 0

    def encode(self, texts):  # type: ignore[no-untyped-def]
        self.encoded += len(texts)
        return super().encode(texts)


def test_hits_and_misses(tmp_path: Path) -> None:
    enc = CountingEncoder()
    first, stats = embed_texts(TEXTS[:30], enc, cache_dir=tmp_path)
    assert (stats.hits, stats.misses, enc.encoded) == (0, 30, 30)
    second, stats = embed_texts(TEXTS, enc, cache_dir=tmp_path)
    assert (stats.hits, stats.misses, enc.encoded) == (30, 20, 50)
    assert np.array_equal(first, second[:30])
    assert np.array_equal(second, enc.encode(TEXTS))


def test_duplicates_in_input_are_embedded_once_and_returned_in_order(tmp_path: Path) -> None:
    enc = CountingEncoder()
    texts = ["b", "a", "b", "c", "a"]
    out, stats = embed_texts(texts, enc, cache_dir=tmp_path)
    assert enc.encoded == 3 and stats.unique == 3
    assert np.array_equal(out[0], out[2]) and np.array_equal(out[1], out[4])
    assert np.array_equal(out, HashingEncoder(32).encode(texts))


def test_key_is_the_exact_text_and_the_encoder_fingerprint(tmp_path: Path) -> None:
    embed_texts(["Hello"], HashingEncoder(32), cache_dir=tmp_path)
    _, stats = embed_texts(["Hello "], HashingEncoder(32), cache_dir=tmp_path)
    assert stats.misses == 1  # a trailing space is a different text
    _, stats = embed_texts(["Hello"], HashingEncoder(64), cache_dir=tmp_path)
    assert stats.misses == 1  # another encoder never reads these vectors


def test_cache_is_reused_by_another_process(tmp_path: Path) -> None:
    code = (
        "import sys; from rewardlab.embed import embed_texts, HashingEncoder; "
        f"_, s = embed_texts([f'text {{i}}' for i in range(40)], HashingEncoder(32), cache_dir={str(tmp_path)!r}); "
        "print(s.hits, s.misses)"
    )
    first = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    second = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert first == ["0", "40"] and second == ["40", "0"]


def test_two_processes_writing_at_once_leave_a_consistent_cache(tmp_path: Path) -> None:
    code = (
        "from rewardlab.embed import embed_texts, HashingEncoder\n"
        "for r in range(20):\n"
        f"    embed_texts([f'shared {{r}} {{i}}' for i in range(30)], HashingEncoder(32), cache_dir={str(tmp_path)!r},"
        " chunk_size=7)\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(2)]
    assert all(p.wait(timeout=120) == 0 for p in procs)
    texts = [f"shared {r} {i}" for r in range(20) for i in range(30)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no pack may look corrupted
        out, stats = embed_texts(texts, HashingEncoder(32), cache_dir=tmp_path)
    assert stats.misses == 0 and stats.corrupt_packs == 0
    assert np.array_equal(out, HashingEncoder(32).encode(texts))
    assert not list(tmp_path.rglob("*.tmp")), "no half-written files are left behind"


@pytest.mark.parametrize("damage", ["flip", "truncate", "garbage"])
def test_corrupted_pack_is_detected_and_recomputed(tmp_path: Path, damage: str) -> None:
    enc = HashingEncoder(32)
    reference, _ = embed_texts(TEXTS, enc, cache_dir=tmp_path)
    cache = EmbeddingCache(enc.fingerprint(), enc.dim, tmp_path)
    (pack,) = list(cache.packs_dir.glob("*.safetensors"))
    raw = bytearray(pack.read_bytes())
    if damage == "flip":
        raw[-10] ^= 0xFF  # inside the vectors
    elif damage == "truncate":
        raw = raw[: len(raw) // 2]
    else:
        raw = bytearray(b"not a safetensors file at all")
    pack.write_bytes(bytes(raw))
    with pytest.warns(UserWarning, match="corrupted"):
        out, stats = embed_texts(TEXTS, enc, cache_dir=tmp_path)
    assert stats.corrupt_packs == 1 and stats.misses == len(TEXTS)
    assert np.array_equal(out, reference)
    assert list(cache.packs_dir.glob("*.corrupt")), "the damaged pack is kept aside for inspection"
    _, stats = embed_texts(TEXTS, enc, cache_dir=tmp_path)
    assert stats.hits == len(TEXTS) and stats.corrupt_packs == 0


def test_use_cache_false_writes_nothing(tmp_path: Path) -> None:
    embed_texts(TEXTS, HashingEncoder(32), cache_dir=tmp_path, use_cache=False)
    assert not list(tmp_path.rglob("*.safetensors"))


def test_default_cache_dir_follows_the_environment(isolated_cache: Path) -> None:
    embed_texts(["x"], HashingEncoder(16))
    assert list(isolated_cache.rglob("*.safetensors"))


def test_unknown_encoder_spec_is_a_clear_error() -> None:
    with pytest.raises(EncoderError, match="unknown encoder spec"):
        make_encoder("bert-huge")
    with pytest.raises(EncoderError, match="integer"):
        make_encoder("hashing:big")


def test_progress_has_its_total_before_the_cache_lookup(tmp_path: Path) -> None:
    """A bar showed "0/?" while a large cache was searched: the total is known first, then hits, then each chunk."""
    enc = HashingEncoder(16)
    texts = [f"text {i}" for i in range(10)]
    embed_texts(texts[:4], enc, cache_dir=tmp_path)
    seen: list[tuple[int, int]] = []
    embed_texts(texts + texts[:2], enc, cache_dir=tmp_path, chunk_size=3, on_progress=lambda d, t: seen.append((d, t)))
    assert seen == [(0, 10), (4, 10), (7, 10), (10, 10)]
