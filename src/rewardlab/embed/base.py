"""The `Encoder` protocol and encoder specs (``minilm:int8``, ``st:<path>``, ...) used everywhere a user picks one."""

from __future__ import annotations

import importlib.util
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

from rewardlab.embed.devices import ENCODER_LIBRARY_DEVICE, gpu_or_none
from rewardlab.errors import EncoderError

if TYPE_CHECKING:
    import torch


@runtime_checkable
class Encoder(Protocol):
    """Maps texts to fixed-size float32 vectors.

    ``fingerprint`` must change whenever the vectors could change (weights, truncation, pooling,
    precision); it keys the embedding cache and is stored with every reward model.
    """

    spec: str

    @property
    def dim(self) -> int: ...

    def fingerprint(self) -> str: ...

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


#: The fastest variant whose downstream accuracy is indistinguishable from fp32 (benchmarks/embed_throughput.py).
DEFAULT_ENCODER = "minilm:int8"

ENCODER_SPECS = {
    "minilm": "all-MiniLM-L6-v2, torch fp32 (the reference)",
    "minilm:bf16": "all-MiniLM-L6-v2 under torch bf16 autocast (fp32 where the CPU lacks bf16)",
    "minilm:onnx": "all-MiniLM-L6-v2 on ONNX Runtime, fused fp32 graph (same vectors as minilm; on a GPU: minilm)",
    "minilm:int8": "all-MiniLM-L6-v2 on ONNX Runtime, per-channel int8 (fastest; on a GPU: torch fp16)",
    "st:<path-or-name>": "any sentence-transformers model",
    "hf-last:<dir|file.gguf|smollm2>": "a decoder LLM's last-token hidden state (fp32; a GGUF's conversion is cached)",
    "hf-last:<...>:int8": "the same, Linear layers int8 with per-token scales (faster than fp32 only with VNNI; "
                          "on a GPU: fp16)",
    "hf-last:<...>:bf16": "the same in bf16, only on CPUs with native bf16 (avx512_bf16 or amx_bf16)",
    "hf-last:<...>:onnx": "the same on ONNX Runtime, fp32 (the fp32 vectors, faster; on a GPU: torch fp32)",
    "hf-last:<...>:onnx-int8": "ONNX Runtime with int8 weights, edge layers and FFN outputs fp32 (on a GPU: fp16)",
    "hf-last:<file.gguf|smollm2>:gguf": "llama.cpp on the GGUF's own quantised weights (no fp32 "
                                        "conversion; make setup-llama; on a GPU: torch fp32)",
    "hf-last:<...>:gguf-q8": "llama.cpp on the weights requantised once to Q8_0 (on a GPU: torch fp32)",
    "hf-last:<...>:gguf-f16": "llama.cpp on the weights converted once to float16 (on a GPU: torch fp32)",
    "hashing[:dim]": "weight-free hashed word n-grams, for smoke tests",
}


def make_encoder(spec: str, device: str = ENCODER_LIBRARY_DEVICE) -> Encoder:
    """Build an encoder from its short spec (see ``ENCODER_SPECS``) to run on ``device`` (auto, cpu, cuda[:i]).

    A spec names a vector space: it and the encoder's precision go into the fingerprint that keys the
    embedding cache and every saved reward model. ``minilm:int8`` and ``minilm:onnx`` fall back to torch
    (with a warning saying why) when onnxruntime is not installed.

    On a GPU the spec's CPU-only recipes run as their GPU counterparts, and the fingerprint names what is
    computed, never the device: fp32 and bf16 share the CPU's fingerprints (GPU and CPU vectors differ by
    rounding: cosine ≥ .999), int8 specs run as fp16 (their own fingerprint: int8 and fp16 vectors differ
    more than rounding), ``minilm:onnx`` runs as ``minilm`` (torch fp32; ONNX graphs are the CPU route).
    A model trained on GPU fp16 vectors is therefore scored on a GPU; the strict fingerprint check refuses
    it elsewhere. The default device is the CPU (`ENCODER_LIBRARY_DEVICE`) so that a spec alone, as a saved
    model names its encoder, gives the vectors it always gave; the CLI's ``--device`` defaults to auto.
    """
    torch_device = gpu_or_none(device)
    name, _, arg = spec.partition(":")
    if name == "minilm":
        if torch_device is not None:
            return _make_gpu_minilm(spec, arg or "fp32", torch_device)
        return _make_minilm(spec, arg or "fp32")
    if name == "st":
        from rewardlab.embed.sentence_transformer import SentenceTransformerEncoder

        return SentenceTransformerEncoder(arg, device=torch_device or "cpu")
    if name == "hf-last":
        from rewardlab.embed.last_token import HFLastTokenEncoder, smollm2_gguf_path
        from rewardlab.embed.llama_cpp_decoder import LLAMA_CPP_FORMATS, LlamaCppLastTokenEncoder
        from rewardlab.embed.llm_quant import PRECISIONS
        from rewardlab.embed.onnx_decoder import ONNX_DECODER_PRECISIONS, OnnxLastTokenEncoder

        location, _, precision = arg.rpartition(":")
        if precision not in (*PRECISIONS, *ONNX_DECODER_PRECISIONS, *LLAMA_CPP_FORMATS):
            location, precision = arg, "fp32"
        if not location:
            raise EncoderError("encoder spec 'hf-last:' needs a model directory, a .gguf file, or 'smollm2'")
        path = smollm2_gguf_path() if location == "smollm2" else location
        if precision in ONNX_DECODER_PRECISIONS:
            if torch_device is None:
                return OnnxLastTokenEncoder(path, precision)
            precision = ONNX_DECODER_PRECISIONS[precision]  # ONNX graphs are the CPU route: torch on a GPU
        if precision in LLAMA_CPP_FORMATS:
            if torch_device is None:
                return LlamaCppLastTokenEncoder(path, precision)
            precision = "fp32"  # this llama.cpp build is CPU-only: torch on a GPU
        return HFLastTokenEncoder(path, precision=precision, device=torch_device or "cpu")
    if name == "hashing":
        from rewardlab.embed.hashing import HashingEncoder

        try:
            dim = int(arg) if arg else 256
        except ValueError:
            raise EncoderError(f"encoder spec {spec!r}: dimension must be an integer") from None
        return HashingEncoder(dim=dim)
    raise EncoderError(f"unknown encoder spec {spec!r}; known: {', '.join(ENCODER_SPECS)}")


def _make_gpu_minilm(spec: str, variant: str, device: torch.device) -> Encoder:
    from rewardlab.embed.minilm import GPU_PRECISIONS, MiniLMEncoder

    on_gpu = {"int8": "fp16", "onnx": "fp32"}.get(variant, variant)
    if on_gpu not in GPU_PRECISIONS or variant == "fp16":  # fp16 is what int8 runs as, not a spec of its own
        raise EncoderError(f"encoder spec {spec!r}: minilm variants are fp32, bf16, onnx and int8")
    return MiniLMEncoder(precision=on_gpu, device=device, spec=spec)


def _make_minilm(spec: str, variant: str) -> Encoder:
    from rewardlab.embed.minilm import TORCH_PRECISIONS, MiniLMEncoder

    if variant in TORCH_PRECISIONS:
        return MiniLMEncoder(precision=variant)
    if variant in ("onnx", "int8"):
        if importlib.util.find_spec("onnxruntime") is None:
            warnings.warn(f"encoder {spec!r} needs onnxruntime, which is not installed (pip install onnxruntime); "
                          "falling back to 'minilm' (torch fp32, slower, different cache and model key)", stacklevel=3)
            return MiniLMEncoder()
        from rewardlab.embed.onnx_minilm import OnnxMiniLMEncoder

        return OnnxMiniLMEncoder(precision="fp32" if variant == "onnx" else "int8")
    raise EncoderError(f"encoder spec {spec!r}: minilm variants are fp32, bf16, onnx and int8")
