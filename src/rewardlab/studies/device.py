"""Where a study's encoder runs and its torch heads fit (``--device`` of the `rewardlab experiment` commands).

A study's config holds one ``device`` spec (auto, cpu, cuda, cuda:N; None: the CPU, as before there was a device).
It is resolved once, before any data is read, so a GPU that is not here is one clear `InvalidValueError`, not a
failure after minutes of embedding. Fits run as Ray tasks stay on the CPU, as cross-validation's do: a task holds
CPUs, not a GPU, and each worker rebuilds the encoder from its spec on its CPU, so with ``ray`` the driver's encoder
is built there too (a GPU build of an int8 spec runs as fp16, another fingerprint the workers would refuse). A CPU fit
is bit for bit the fit without a device (`rewardlab.rewards.head_device`), so ``device="cpu"`` changes no number.
"""

from __future__ import annotations

from rewardlab.embed.base import Encoder, make_encoder


def study_device(spec: str | None, ray: str | None = None) -> str | None:
    """The device the study's heads fit on and its encoder runs on, as a resolved name ("cpu", "cuda:0"); None for
    the CPU without a device (no spec, or fits on Ray). Raises `InvalidValueError` for a device that is not here."""
    if spec is None:
        return None
    from rewardlab.embed.devices import resolve_device  # torch loads only when a device is asked for

    resolved = str(resolve_device(spec))
    return None if ray is not None else resolved


def study_encoder(spec: str, device: str | None) -> Encoder:
    """The study's encoder on ``device`` (a `study_device` result; None: the library's default, the CPU)."""
    return make_encoder(spec) if device is None else make_encoder(spec, device)

