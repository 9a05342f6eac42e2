"""The `Encoder` protocol and encoder specs (``minilm``, ``hashing:256``) used everywhere a user picks one."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from rewardlab.errors import EncoderError


@runtime_checkable
class Encoder(Protocol):
    """Maps texts to fixed-size float32 vectors.

    ``fingerprint`` must change whenever the vectors could change (weights, truncation, pooling,
    precision); it keys the embedding cache and is stored with every reward model.
    """

    spec: str
    dim: int

    def fingerprint(self) -> str: ...

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


def make_encoder(spec: str) -> Encoder:
    """Build an encoder from its short spec.

    ``minilm`` — all-MiniLM-L6-v2 (384-d, fp32 torch), the default;
    ``hashing`` / ``hashing:<dim>`` — weight-free hashed word n-grams, for fast tests and smoke runs.
    """
    name, _, arg = spec.partition(":")
    if name == "minilm":
        if arg not in ("", "fp32"):
            raise EncoderError(f"encoder spec {spec!r}: minilm supports only fp32 in this version")
        from rewardlab.embed.minilm import MiniLMEncoder

        return MiniLMEncoder()
    if name == "hashing":
        from rewardlab.embed.hashing import HashingEncoder

        try:
            dim = int(arg) if arg else 256
        except ValueError:
            raise EncoderError(f"encoder spec {spec!r}: dimension must be an integer") from None
        return HashingEncoder(dim=dim)
    raise EncoderError(f"unknown encoder spec {spec!r}; known: minilm, hashing[:dim]")
