"""Faster precisions for the LLM last-token encoder: per-token int8 and native bf16.

``int8``: every ``nn.Linear`` of the decoder gets int8 weights with one scale per output channel,
and its input is quantised on the fly with one scale per *token* (row); the product runs as an int8
matrix multiply with int32 accumulation (``torch._int_mm``) and is rescaled to fp32. Per token matters:
a decoder's first token carries activations hundreds of times larger than the rest, and torch's
dynamic quantisation (one scale per tensor) flattens every other token against it. Measured on 16 HH
texts (SmolLM2-135M, 128 tokens): per tensor, cosine to fp32 mean 0.907 / min 0.840 (0.977 / 0.963
with the FFN down projections kept fp32); per token 0.997 / 0.995, and 1.4× faster than per tensor.
One- and two-token texts still fell to 0.976, so inputs above 6 bypass int8 (see
`rewardlab.embed.llm_int8`): 16 texts incl. those, mean 0.998, min 0.997.
int8 pays off only with VNNI: with torch held to AVX2 (``ATEN_CPU_CAPABILITY=avx2``,
``ONEDNN_MAX_CPU_ISA=AVX2``) on the same CPU it ran 0.96 texts/s against fp32's 1.26, cosine min
0.993, so on CPUs without VNNI it still works but warns.
The embedding table, norms, attention softmax and activations stay fp32. A row's scale is its own,
so a text's vector does not depend on its batch mates.

``bf16``: weights and activations in bfloat16, only on CPUs that compute bf16 natively
(``avx512_bf16`` or ``amx_bf16`` in ``/proc/cpuinfo``); elsewhere torch would emulate it, slower
than fp32, so we refuse with an error that says so rather than silently running slow.

Each precision's tag (precision, torch version, `RECIPE`) goes into the encoder
fingerprint: any of them can change the vectors.

On a GPU (`gpu_precision`): fp32 and bf16 run as such and share the CPU's tags (the same recipe; the
vectors differ by rounding only), and ``int8``, a CPU recipe, runs as ``fp16`` (weights and activations in
float16), whose tag is its own. Measured on the CPU with fp16 emulated (SmolLM2-135M, 4 texts): cosine to
fp32 mean 0.999998, min 0.999994; bf16 mean 0.99992, min 0.99991.
"""

from __future__ import annotations

import warnings
from functools import lru_cache
from pathlib import Path
from typing import Any

from rewardlab.errors import EncoderError

PRECISIONS = ("fp32", "int8", "bf16")
#: what a precision of a spec runs as on a GPU
GPU_RUNS_AS = {"fp32": "fp32", "int8": "fp16", "bf16": "bf16"}
RECIPE = "q3"  # bump when what is quantised (or how) changes
BF16_FLAGS = ("avx512_bf16", "amx_bf16")
VNNI_FLAGS = ("avx512_vnni", "avx_vnni")


@lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The CPU feature flags the kernel reports (empty where ``/proc/cpuinfo`` is missing, e.g. not Linux)."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags") and ":" in line:
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def has_native_bf16() -> bool:
    return any(flag in cpu_flags() for flag in BF16_FLAGS)


def check_precision(precision: str) -> None:
    """A clear `EncoderError` for an unknown precision or bf16 on a CPU without bf16 instructions."""
    if precision not in PRECISIONS:
        raise EncoderError(f"LLM encoder precision {precision!r}: choose one of {', '.join(PRECISIONS)}")
    if precision == "bf16" and not has_native_bf16():
        raise EncoderError("precision bf16 needs a CPU with native bf16 (avx512_bf16 or amx_bf16 in /proc/cpuinfo); "
                           "this one has neither, and emulated bf16 is slower than fp32: use int8 or fp32")


def gpu_precision(precision: str) -> str:
    """What a spec's ``precision`` runs as on a GPU; a clear `EncoderError` for bf16 on a GPU without it."""
    if precision not in PRECISIONS:
        check_precision(precision)  # the unknown-precision error
    import torch

    if precision == "bf16" and not torch.cuda.is_bf16_supported():
        raise EncoderError("precision bf16 needs a GPU with bf16 (compute capability 8.0 or later); "
                           "use fp32, or int8 (which runs as fp16 on a GPU)")
    return GPU_RUNS_AS[precision]


def precision_tag(precision: str) -> str:
    """What besides the weights decides the vectors at this precision (as run: ``fp16`` too); ``fp32`` keeps the
    historic (empty) tag."""
    if precision not in (*PRECISIONS, "fp16"):
        check_precision(precision)
    if precision == "fp32":
        return ""
    import torch

    if precision == "int8":
        return f"int8pt-torch{torch.__version__}-{RECIPE}"
    return f"{precision}-torch{torch.__version__}-{RECIPE}"


def apply_precision(model: Any, precision: str, on_gpu: bool = False) -> Any:
    """The fp32 ``model`` converted to ``precision`` (in eval mode); ``on_gpu``: ``precision`` is what
    `gpu_precision` gave (fp32, fp16 or bf16), the model goes to the GPU after."""
    import torch

    if on_gpu:
        model.eval()
        return model.to({"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[precision])
    check_precision(precision)
    model.eval()
    if precision == "int8":
        from rewardlab.embed.llm_int8 import quantize_linears

        if not any(flag in cpu_flags() for flag in VNNI_FLAGS):
            warnings.warn("precision int8 on a CPU without VNNI (avx512_vnni / avx_vnni): measured slower than fp32 "
                          "and less accurate (cosine min 0.993) with torch limited to AVX2; fp32 is the better choice "
                          "here", stacklevel=2)
        return quantize_linears(model)
    if precision == "bf16":
        return model.to(torch.bfloat16)
    return model
