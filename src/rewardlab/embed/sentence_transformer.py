"""Any sentence-transformers model as an encoder (``st:<path-or-name>``), e.g. to try a bigger encoder.

A local directory is fingerprinted by the hash of its weight files; a hub name by the name and the
revision resolved in the local Hugging Face cache, so a changed checkpoint never reuses old vectors.
The model runs in fp32 on ``device`` (the CPU or a GPU); the device is not in the fingerprint, since fp32 GPU
and CPU vectors differ by rounding only.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rewardlab.embed.digest import file_digest
from rewardlab.errors import EncoderError

if TYPE_CHECKING:
    import torch

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


class SentenceTransformerEncoder:
    def __init__(self, name_or_path: str, batch_size: int | None = None, max_tokens: int | None = None,
                 device: torch.device | str = "cpu") -> None:
        if not name_or_path:
            raise EncoderError("encoder spec 'st:' needs a model directory or name, e.g. st:/models/all-mpnet-base-v2")
        self.name_or_path = name_or_path
        self.spec = f"st:{name_or_path}"
        self.device = str(device)
        self.batch_size = batch_size or (32 if self.device == "cpu" else 256)
        self.max_tokens = max_tokens
        self._model: Any = None

    def _load(self) -> Any:
        if self._model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            try:
                from sentence_transformers import SentenceTransformer
            except ImportError:
                raise EncoderError("st: encoders need sentence-transformers (pip install sentence-transformers)") from None
            try:
                self._model = SentenceTransformer(self.name_or_path, device=self.device)
            except (OSError, ValueError) as exc:
                raise EncoderError(f"cannot load sentence-transformers model {self.name_or_path!r}: {exc}") from None
            if self.max_tokens is not None:
                self._model.max_seq_length = self.max_tokens
        return self._model

    @property
    def dim(self) -> int:
        model = self._load()
        getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension  # renamed in v6
        return int(getter())

    def fingerprint(self) -> str:
        model = self._load()
        path = Path(self.name_or_path)
        weights = [path / name for name in WEIGHT_FILES if (path / name).is_file()] if path.is_dir() else []
        if weights:
            identity = "w" + file_digest(weights[0])[:16]
        else:
            revision = getattr(model.model_card_data, "base_model_revision", None) or "unknown-revision"
            identity = f"{self.name_or_path}@{revision}"
        return f"st-{identity}-t{model.max_seq_length}-l2"

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        model = self._load()
        vectors = model.encode(list(texts), batch_size=self.batch_size, normalize_embeddings=True,
                               convert_to_numpy=True, show_progress_bar=False)
        return np.asarray(vectors, dtype=np.float32)
