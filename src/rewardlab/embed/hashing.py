"""A weight-free encoder: signed feature hashing of word unigrams and bigrams, L2-normalised.

Deterministic, instant, and informative enough that reward heads learn from it, so tests and smoke
runs exercise the whole pipeline without loading a neural network.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np

from rewardlab.errors import InvalidValueError

_WORD = re.compile(r"\w+", re.UNICODE)


class HashingEncoder:
    def __init__(self, dim: int = 256, max_tokens: int = 256) -> None:
        if dim < 2:
            raise InvalidValueError("dim must be >= 2")
        self.dim = dim
        self.max_tokens = max_tokens
        self.spec = f"hashing:{dim}"

    def fingerprint(self) -> str:
        return f"hashing-v1-d{self.dim}-t{self.max_tokens}"

    def _features(self, text: str) -> list[str]:
        words = _WORD.findall(text.casefold())[: self.max_tokens]
        return words + [f"{a} {b}" for a, b in zip(words, words[1:])]

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for feature in self._features(text):
                digest = int.from_bytes(hashlib.blake2b(feature.encode(), digest_size=8).digest(), "little")
                out[row, digest % self.dim] += 1.0 if (digest >> 63) & 1 else -1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms > 0, norms, 1.0)
