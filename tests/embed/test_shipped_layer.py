"""The shipped-vectors layer of the embedding cache: read only under its own fingerprint, after the user's packs,
refused (with a warning, texts embedded) when damaged, and never written to."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

from rewardlab.embed import EmbeddingCache, HashingEncoder, embed_texts
from rewardlab.embed.cache import read_pack
from rewardlab.embed.shipped import SHIPPED_ENV, pack_name, write_shipped_pack

TEXTS = [f"shipped response {i} on subject {i % 5}" for i in range(40)]


class CountingEncoder(HashingEncoder):
    """Counts how many texts really reach the encoder."""

    def __init__(self, suffix: str = "") -> None:
        super().__init__(dim=32)
        self.suffix = suffix
        self.encoded = 0

    def fingerprint(self) -> str:
        return super().fingerprint() + self.suffix

    def encode(self, texts):  # type: ignore[no-untyped-def]
        self.encoded += len(texts)
        return super().encode(texts)


@pytest.fixture
def shipped_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A shipped folder holding the vectors of `TEXTS` under CountingEncoder's fingerprint, as the cache's layer."""
    directory = tmp_path / "shipped"
    encoder = CountingEncoder()
    write_shipped_pack(TEXTS, encoder.encode(TEXTS), encoder.fingerprint(), directory)
    monkeypatch.setenv(SHIPPED_ENV, str(directory))
    return directory


def snapshot(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def test_found_with_an_empty_user_cache(shipped_dir: Path, tmp_path: Path) -> None:
    encoder = CountingEncoder()
    vectors, stats = embed_texts(TEXTS, encoder, cache_dir=tmp_path / "user")
    assert (stats.hits, stats.misses, encoder.encoded) == (len(TEXTS), 0, 0)
    assert np.array_equal(vectors, HashingEncoder(dim=32).encode(TEXTS))


def test_only_under_its_own_fingerprint(shipped_dir: Path, tmp_path: Path) -> None:
    other = CountingEncoder(suffix="-ort9.9")  # same width, another fingerprint (e.g. another onnxruntime)
    _, stats = embed_texts(TEXTS, other, cache_dir=tmp_path / "user")
    assert (stats.hits, stats.misses, other.encoded) == (0, len(TEXTS), len(TEXTS))
    assert EmbeddingCache(other.fingerprint(), 32, tmp_path / "user2").shipped is None


def test_turned_off(shipped_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SHIPPED_ENV, "off")
    encoder = CountingEncoder()
    _, stats = embed_texts(TEXTS, encoder, cache_dir=tmp_path / "user")
    assert (stats.hits, encoder.encoded) == (0, len(TEXTS))


def test_user_cache_first_and_shipped_never_written(shipped_dir: Path, tmp_path: Path) -> None:
    encoder = CountingEncoder()
    fingerprint = encoder.fingerprint()
    user = EmbeddingCache(fingerprint, 32, tmp_path / "user")
    mine = -encoder.encode(TEXTS[:5])  # the user's own vectors for five texts differ from the shipped ones
    user.put_many(TEXTS[:5], mine)
    before = snapshot(shipped_dir)
    extra = ["a text nobody shipped", "another one"]
    vectors, stats = embed_texts(TEXTS + extra, encoder, cache_dir=tmp_path / "user")
    assert np.array_equal(vectors[:5], mine)
    assert np.array_equal(vectors[5:len(TEXTS)], encoder.encode(TEXTS[5:]))
    assert (stats.hits, stats.misses) == (len(TEXTS), 2)
    assert snapshot(shipped_dir) == before  # the new vectors went to the user's packs
    cache = EmbeddingCache(fingerprint, 32, tmp_path / "user")
    assert cache.lookup(TEXTS + extra).all() and cache.shipped_hits == len(TEXTS) - 5
    assert cache.clear() == 2 and snapshot(shipped_dir) == before


@pytest.mark.parametrize("damage", ["flipped bytes", "another fingerprint inside", "truncated"])
def test_damaged_pack_is_refused_and_texts_embedded(shipped_dir: Path, tmp_path: Path, damage: str) -> None:
    encoder = CountingEncoder()
    path = shipped_dir / pack_name(encoder.fingerprint())
    if damage == "flipped bytes":
        data = bytearray(path.read_bytes())
        for offset in (-4, -1000, -2000):
            data[offset] ^= 0xFF
        path.write_bytes(bytes(data))
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[:-100])
    else:  # a whole pack of other vectors, named for this fingerprint
        copy = tmp_path / "other"
        write_shipped_pack(TEXTS, -HashingEncoder(dim=32).encode(TEXTS), encoder.fingerprint() + "-other", copy)
        shutil.copyfile(next(copy.glob("*.safetensors")), path)
    before = snapshot(shipped_dir)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        vectors, stats = embed_texts(TEXTS, encoder, cache_dir=tmp_path / "user")
    assert any("shipped embeddings" in str(w.message) and "ignored" in str(w.message) for w in caught)
    assert (stats.hits, stats.misses, encoder.encoded) == (0, len(TEXTS), len(TEXTS))
    assert np.array_equal(vectors, HashingEncoder(dim=32).encode(TEXTS))
    assert snapshot(shipped_dir) == before  # refused, not moved aside or rewritten


def test_pack_is_the_cache_format_with_its_fingerprint(shipped_dir: Path) -> None:
    encoder = CountingEncoder()
    (path,) = shipped_dir.glob("*.safetensors")
    assert path.name == pack_name(encoder.fingerprint())
    pack = read_pack(path, 32)
    assert pack is not None
    keys, vectors, meta = pack
    assert meta["fingerprint"] == encoder.fingerprint() and meta["texts"] == str(len(TEXTS))
    assert keys.shape == (len(TEXTS), 32) and vectors.shape == (len(TEXTS), 32)


def test_rewriting_keeps_one_pack(shipped_dir: Path) -> None:
    write_shipped_pack(TEXTS[:3], np.zeros((3, 32), np.float32), "another-encoder", shipped_dir)
    assert [p.name for p in shipped_dir.glob("*.safetensors")] == [pack_name("another-encoder")]
