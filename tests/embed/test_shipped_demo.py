"""The vectors shipped for the demo: they are the default encoder's, cover exactly the quickstart's texts, spare a
first run its encoder, and equal what the encoder computes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rewardlab.data.registry import load_named
from rewardlab.embed import embed_texts, make_encoder
from rewardlab.embed.base import DEFAULT_ENCODER, Encoder
from rewardlab.embed.cache import read_pack, text_key
from rewardlab.embed.shipped import PACKAGED_DIR, SHIPPED_ENV, ShippedVectors
from rewardlab.errors import EncoderError
from rewardlab.rewards.default_recipe import DEFAULT_FEATURES
from rewardlab.rewards.features import dataset_texts


def shipped_fingerprints() -> list[str]:
    packs = (read_pack(path, 384) for path in sorted(PACKAGED_DIR.glob("*.safetensors")))
    return [pack[2].get("fingerprint", "?") if pack else "(damaged)" for pack in packs]


@pytest.fixture
def default_encoder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Encoder, ShippedVectors, Path]:
    """The default encoder on the CPU with an empty models folder, and the vectors shipped for it (else a skip)."""
    monkeypatch.delenv(SHIPPED_ENV, raising=False)
    models = tmp_path / "models"
    models.mkdir()
    monkeypatch.setenv("REWARDLAB_MODELS_DIR", str(models))
    try:
        encoder = make_encoder(DEFAULT_ENCODER, "cpu")
    except EncoderError as exc:
        pytest.skip(f"the default encoder is not available here: {exc}")
    shipped = ShippedVectors.for_fingerprint(encoder.fingerprint(), encoder.dim)
    if shipped is None:
        pytest.skip(f"no vectors are shipped for this machine's encoder fingerprint {encoder.fingerprint()} (another "
                    f"onnxruntime version?); shipped: {shipped_fingerprints()}. When the default encoder changed, "
                    "re-run python -m rewardlab.embed.shipped --rebuild")
    return encoder, shipped, models


def demo_texts(encoder: Encoder) -> list[str]:
    return list(dict.fromkeys(dataset_texts(load_named("hh-harmless-demo", None), DEFAULT_FEATURES, encoder)))


def test_one_pack_of_the_default_encoder() -> None:
    fingerprints = shipped_fingerprints()
    assert len(fingerprints) == 1 and fingerprints[0].startswith("minilm-onnx-int8-")


def test_pack_holds_exactly_the_quickstart_texts(default_encoder: tuple[Encoder, ShippedVectors, Path]) -> None:
    encoder, shipped, _ = default_encoder
    loaded = shipped.load()
    assert loaded is not None
    index, vectors = loaded
    assert set(index) == {text_key(t) for t in demo_texts(encoder)}  # else the demo changed: rebuild the pack
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)


def test_empty_cache_embeds_nothing_and_builds_no_graph(default_encoder: tuple[Encoder, ShippedVectors, Path],
                                                        tmp_path: Path) -> None:
    encoder, _, models = default_encoder
    texts = dataset_texts(load_named("hh-harmless-demo", 200), DEFAULT_FEATURES, encoder)
    _, stats = embed_texts(texts, encoder, cache_dir=tmp_path / "user")
    assert stats.unique > 400 and (stats.hits, stats.misses) == (stats.unique, 0)
    assert not any(models.iterdir())  # the ONNX graph is built only when a text is missing


@pytest.mark.slow
def test_shipped_vectors_are_what_the_encoder_computes(default_encoder: tuple[Encoder, ShippedVectors, Path],
                                                       built_models_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REWARDLAB_MODELS_DIR", str(built_models_dir))  # the session's build, shared with other tests
    encoder = make_encoder(DEFAULT_ENCODER, "cpu")
    _, shipped, _ = default_encoder
    loaded = shipped.load()
    assert loaded is not None
    index, vectors = loaded
    texts = demo_texts(encoder)
    sample = [texts[i] for i in np.random.default_rng(0).choice(len(texts), size=20, replace=False)]
    expected = vectors[[index[text_key(t)] for t in sample]]
    computed = encoder.encode(sample)
    cosine = np.sum(expected * computed, axis=1) / (np.linalg.norm(expected, axis=1) * np.linalg.norm(computed, axis=1))
    assert cosine.min() >= 0.9999, f"lowest cosine {cosine.min():.6f}: rebuild the pack"
