"""The vectors shipped for the demo: they are the default encoder's, cover exactly the quickstart's texts, spare a
first run its encoder, and equal what the encoder computes."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from rewardlab.data.registry import load_named
from rewardlab.embed import embed_texts, make_encoder
from rewardlab.embed import shipped as shipped_module
from rewardlab.embed.base import DEFAULT_ENCODER, Encoder
from rewardlab.embed.cache import read_pack, text_key
from rewardlab.embed.shipped import INT8_KERNELS_KEY, PACKAGED_DIR, SHIPPED_ENV, ShippedVectors, int8_kernels
from rewardlab.errors import EncoderError
from rewardlab.rewards.default_recipe import DEFAULT_FEATURES
from rewardlab.rewards.features import dataset_texts


def shipped_metadata() -> list[dict[str, str]]:
    packs = (read_pack(path, 384) for path in sorted(PACKAGED_DIR.glob("*.safetensors")))
    return [pack[2] if pack else {"fingerprint": "(damaged)"} for pack in packs]


def shipped_fingerprints() -> list[str]:
    return [meta.get("fingerprint", "?") for meta in shipped_metadata()]


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
    built_with = [meta.get(INT8_KERNELS_KEY) for meta in shipped_metadata()]
    if built_with != [int8_kernels()]:
        pytest.skip(f"the shipped int8 vectors were computed with {built_with} int8 kernels and this CPU has "
                    f"{int8_kernels()}: they are not used here (ONNX Runtime's AVX2 int8 sums saturate, VNNI's do not)")
    return encoder, shipped, models


def demo_texts(encoder: Encoder) -> list[str]:
    return list(dict.fromkeys(dataset_texts(load_named("hh-harmless-demo", None), DEFAULT_FEATURES, encoder)))


def test_one_pack_of_the_default_encoder_saying_which_int8_kernels_computed_it() -> None:
    (meta,) = shipped_metadata()
    assert meta["fingerprint"].startswith("minilm-onnx-int8-")
    assert meta[INT8_KERNELS_KEY] in ("x86-vnni", "x86-avx2", "aarch64", "arm64")


def test_another_cpus_int8_vectors_are_not_used(default_encoder: tuple[Encoder, ShippedVectors, Path],
                                               tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    encoder, shipped, _ = default_encoder
    other = "x86-avx2" if int8_kernels() != "x86-avx2" else "x86-vnni"
    monkeypatch.setattr(shipped_module, "int8_kernels", lambda: other)
    monkeypatch.setattr(shipped_module, "_LOADED", {})  # forget this process's verified read
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # another CPU's pack is not damaged: no warning, just not used
        assert shipped.load() is None


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
