"""Where a model runs: ``--device auto|cpu|cuda[:i]`` parsed once, checked once, with one clear error.

Every encoder, generator, head fit and policy run takes a device spec and turns it into a ``torch.device``
here, so "auto", a missing GPU and a bad index mean the same thing everywhere. A spec that cannot be used
raises `InvalidValueError` (a `RewardlabError`), which the CLI prints as one line, not a traceback.

What a device changes besides speed is the arithmetic: `compute_dtype` gives fp32 on the CPU and a half
precision on a GPU. Which precision an *encoder* runs in is part of its fingerprint, decided by the encoder
spec (see `rewardlab.embed.base.make_encoder`), not by the device; this module only says what a device can do.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from rewardlab.errors import InvalidValueError

if TYPE_CHECKING:
    import torch

#: What the CLI's ``--device`` and the generator and policy configs default to: CUDA when present, else the CPU.
DEFAULT_DEVICE = "auto"
#: Encoders built from a spec alone (``make_encoder(spec)``, e.g. when a saved reward model is loaded) stay on the
#: CPU unless asked: a spec must give the vectors the model was trained on wherever it is loaded.
ENCODER_LIBRARY_DEVICE = "cpu"

_SPEC = re.compile(r"^(auto|cpu|cuda)(?::(\d+))?$")


def parse_device_spec(spec: str) -> tuple[str, int | None]:
    """``"cuda:1"`` -> ``("cuda", 1)``; checks the form only (no torch import, no GPU query)."""
    text = spec.strip().lower() if isinstance(spec, str) else ""
    match = _SPEC.match(text)
    if match is None or (match.group(2) is not None and match.group(1) != "cuda"):
        raise InvalidValueError(f"device {spec!r}: expected auto, cpu, cuda or cuda:N (N a GPU index, e.g. cuda:0)")
    index = match.group(2)
    return match.group(1), None if index is None else int(index)


def cuda_count() -> int:
    """How many CUDA devices torch can use here (0 with a CPU-only torch build or no driver)."""
    import torch

    try:
        return int(torch.cuda.device_count()) if torch.cuda.is_available() else 0
    except (RuntimeError, AssertionError):  # a broken driver install reports itself this way
        return 0


def resolve_device(spec: str = DEFAULT_DEVICE) -> torch.device:
    """The ``torch.device`` for ``auto`` (CUDA device 0 when CUDA is usable, else the CPU), ``cpu``, ``cuda`` (device 0)
    or ``cuda:N``; a CUDA device that is not here is an `InvalidValueError` naming what is."""
    import torch

    kind, index = parse_device_spec(spec)
    if kind == "cpu":
        return torch.device("cpu")
    count = cuda_count()
    if kind == "auto":
        return torch.device("cuda", 0) if count else torch.device("cpu")
    if count == 0:
        why = ("this torch build has no CUDA support" if torch.version.cuda is None
               else "torch finds no usable CUDA GPU (no GPU, or no driver)")
        raise InvalidValueError(f"device {spec!r}: {why}; use --device cpu (or auto, which picks the CPU here)")
    index = 0 if index is None else index
    if index >= count:
        known = ", ".join(f"cuda:{i}" for i in range(count))
        raise InvalidValueError(f"device {spec!r}: there is no CUDA device {index}; this machine has {count} ({known})")
    return torch.device("cuda", index)


def cpu_only_torch() -> bool:
    """True when the installed torch was built without CUDA (or is not installed), read from ``torch/version.py``
    without importing torch, which takes seconds that a CPU-only path (ONNX, hashing) need not pay."""
    if "torch" in sys.modules:
        return sys.modules["torch"].version.cuda is None
    spec = importlib.util.find_spec("torch")
    for location in (spec.submodule_search_locations or []) if spec is not None else []:
        try:
            text = (Path(location) / "version.py").read_text(encoding="utf-8")
        except OSError:
            continue
        match = re.search(r"^cuda\s*(?::[^=\n]*)?=\s*(.+?)\s*$", text, re.MULTILINE)
        if match is not None:
            return match.group(1) == "None"
    return spec is None


def gpu_or_none(device: torch.device | str) -> torch.device | None:
    """The CUDA device ``device`` (a spec or a ``torch.device``) stands for, or None for the CPU. The spec ``cpu``, and
    ``auto`` under a CPU-only torch build, import no torch, so CPU-only paths (ONNX, hashing) stay light."""
    if isinstance(device, str):
        kind = parse_device_spec(device)[0]
        if kind == "cpu" or (kind == "auto" and cpu_only_torch()):
            return None
        device = resolve_device(device)
    return device if device.type == "cuda" else None


def compute_dtype(device: torch.device) -> torch.dtype:
    """fp32 on the CPU (half precision there is emulated: slower, and no more accurate); on a GPU bf16 where it is
    supported (Ampere and later: fp32's range, so no overflow in large activations), else fp16."""
    import torch

    if device.type != "cuda":
        return torch.float32
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def describe_device(device: torch.device) -> str:
    """``cuda:0 (NVIDIA H200)`` or ``cpu``: for the line a command prints about where it runs."""
    if device.type != "cuda":
        return str(device)
    import torch

    index = device.index or 0
    return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
