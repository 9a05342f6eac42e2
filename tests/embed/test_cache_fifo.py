"""A FIFO (or any non-regular file) named like a cache pack is not a pack: reading the cache must not block on it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rewardlab.embed import EmbeddingCache, HashingEncoder, embed_texts

TEXTS = [f"text {i}" for i in range(8)]

# run apart: opening a FIFO blocks inside safetensors without releasing the GIL, so a thread could not be timed out
READ = """
import json, sys, warnings
from rewardlab.embed import EmbeddingCache, HashingEncoder
encoder = HashingEncoder(dim=16)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    found = EmbeddingCache(encoder.fingerprint(), encoder.dim, sys.argv[1]).get_many(json.loads(sys.argv[2]))
print(json.dumps({"found": sorted(found), "warnings": [str(w.message) for w in caught]}))
"""


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs os.mkfifo")
def test_a_fifo_named_like_a_pack_does_not_hang(tmp_path: Path) -> None:
    encoder = HashingEncoder(dim=16)
    embed_texts(TEXTS, encoder, cache_dir=tmp_path)  # one real pack
    cache = EmbeddingCache(encoder.fingerprint(), encoder.dim, tmp_path)
    fifo = cache.packs_dir / "0000-trap.safetensors"  # sorts before the real pack
    os.mkfifo(fifo)
    try:
        done = subprocess.run([sys.executable, "-c", READ, str(tmp_path), json.dumps(TEXTS)], capture_output=True,
                              text=True, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("reading the cache blocked on a FIFO named like a pack")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["found"] == sorted(TEXTS)  # the real pack still serves every text
    assert any("not a regular file" in w and str(fifo) in w for w in result["warnings"])
    assert fifo.exists()  # left alone: not ours to move
