"""Faster precisions for the LLM last-token encoder: int8 dynamic quantisation and native bf16.

``int8``: every ``nn.Linear`` of the decoder gets int8 weights (per output channel) and int8
activations quantised on the fly with one scale per tensor, via torch's dynamic quantisation (fbgemm
/ x86 kernels, which run on AVX2; VNNI only makes them faster). The embedding table and the norms stay
fp32. Because the activation scale is per tensor, a padded batch would make a text's vector depend on
its batch mates, so the int8 encoder runs one text at a time: a text always gets the same vector.

``bf16``: weights and activations in bfloat16, only on CPUs that compute bf16 natively
(``avx512_bf16`` or ``amx_bf16`` in ``/proc/cpuinfo``); elsewhere torch would emulate it, slower
than fp32, so we refuse with an error that says so rather than silently running slow.

Each precision's tag (precision, torch version, quantisation engine, `RECIPE`) goes into the encoder
fingerprint: any of them can change the vectors.
"""

from __future__ import annotations

import warnings
from functools import lru_cache
from pathlib import Path
from typing import Any

from rewardlab.errors import EncoderError

PRECISIONS = ("fp32", "int8", "bf16")
RECIPE = "q1"  # bump when what is quantised (or how) changes
BF16_FLAGS = ("avx512_bf16", "amx_bf16")


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


def quantized_engine() -> str:
    """The torch quantised-kernel engine in use (``x86``/``fbgemm`` on x86-64, ``qnnpack`` on ARM)."""
    import torch

    engine = str(torch.backends.quantized.engine)
    if engine == "none":
        supported = [e for e in ("x86", "fbgemm", "qnnpack") if e in torch.backends.quantized.supported_engines]
        if not supported:
            raise EncoderError("precision int8 needs torch quantised kernels (x86, fbgemm or qnnpack); none is available")
        torch.backends.quantized.engine = supported[0]
        engine = supported[0]
    return engine


def precision_tag(precision: str) -> str:
    """What besides the weights decides the vectors at this precision; ``fp32`` keeps the historic (empty) tag."""
    check_precision(precision)
    if precision == "fp32":
        return ""
    import torch

    if precision == "int8":
        return f"int8dyn-{quantized_engine()}-torch{torch.__version__}-{RECIPE}"
    return f"bf16-torch{torch.__version__}-{RECIPE}"


def apply_precision(model: Any, precision: str) -> Any:
    """The fp32 ``model`` converted to ``precision`` (in eval mode)."""
    import torch

    check_precision(precision)
    model.eval()
    if precision == "int8":
        quantized_engine()
        with warnings.catch_warnings():  # torch marks its quantised tensor types deprecated (still supported)
            warnings.filterwarnings("ignore", message=".*quantized tensor creation functions.*")
            return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    if precision == "bf16":
        return model.to(torch.bfloat16)
    return model
