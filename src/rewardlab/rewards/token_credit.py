"""Token-level credit: a reward model's sequence reward spread over the response's tokens, summing to it exactly.

Trainers that take dense rewards (one per token) can learn faster from a sparse reward spread over the tokens that
earned it (Chan et al. 2024, "Dense Reward for Free in RLHF"). Two ways to spread it, both through the fp32 torch
twin of the model's MiniLM encoder (`rewardlab.rewards.credit_twin`; for ``minilm:int8``/``onnx``/``bf16`` models
the attribution is of that twin, and ``twin_reward`` beside ``reward`` says how far the twin is from the model):

- ``attention``: the encoder's last-layer attention, heads averaged, read from the pooled positions (MiniLM mean-pools
  every position, so the rows of all positions are averaged), kept on the response's tokens and normalised to sum
  to 1; each token gets its share times the reward. The encoder is frozen, so these shares say what the *encoder*
  reads, the same for every head: they carry the reward's sign and size, not which token the head cares about.
- ``gradient``: integrated gradients (midpoint rule, ``steps`` points) of the head's reward with respect to the input
  embeddings of the response's tokens, from a baseline in which every response token is [PAD] (positions, [CLS],
  [SEP] and any prompt tokens are kept). Completeness makes the attributions sum to twin(x) − twin(baseline) up to
  the quadrature error; the **residual** — the model's reward minus that sum, i.e. the baseline's reward, plus the
  twin's gap to the model, plus the quadrature error — is spread **evenly** over the response tokens the encoder
  saw: no one token is responsible for the reward a blank response of this length already gets. So the sum is
  exact and the ranking of tokens is the integrated gradients' own.

How the head's input is built decides what is credited (`rewardlab.rewards.features`): ``response``/``interaction``
embed the response alone, so its tokens are all the encoder sees on that side; the prompt's vector (and r*p's prompt
factor) is held fixed at its real value and gets no credit. ``joint``/``joint-only`` also embed the prompt's end
and the response's start together; only the response's tokens in that text are varied (attention: read) and their
credit is added to the same tokens' credit from the response alone, so the prompt still gets none. Tokens past the
encoder's limit are listed with credit 0 (`TokenCredit.unseen_tokens` counts them): the reward never saw them.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from rewardlab.errors import DataError, ModelError
from rewardlab.evaluate.bootstrap import Estimate, GroupBootstrap
from rewardlab.rewards.credit_config import CreditConfig
from rewardlab.rewards.credit_twin import MiniLMTwin, Tokens, torch_reward
from rewardlab.rewards.features import JOINT_TEMPLATE, MODE_PARTS, joint_texts, prompt_view
from rewardlab.rewards.model import RewardModel

#: integrated-gradient points evaluated in one forward/backward pass (bounds memory on long texts)
IG_CHUNK = 8


@dataclass(frozen=True)
class TokenCredit:
    """Per-token rewards of one response; ``rewards`` sums to ``reward`` (the model's own sequence reward)."""

    prompt_id: str
    response_id: str
    response: str
    tokens: list[str]  # the response's text of each token (MiniLM word pieces, as written, not lower-cased)
    offsets: list[tuple[int, int]]  # (start, end) character offsets of each token into the response
    rewards: list[float]
    reward: float  # the model's reward of (prompt, response)
    method: str
    twin_reward: float  # the fp32 twin's reward: what was attributed (equals ``reward`` for a ``minilm`` model)
    residual: float  # spread evenly over the seen tokens (gradient: reward − Σ integrated gradients; attention: 0)
    unseen_tokens: int  # tokens past the encoder's limit, credited 0
    encoder: str  # the model's encoder spec
    attributed_with: str  # the encoder the credit ran through

    def as_row(self) -> dict[str, Any]:
        """One export row (`rewardlab.rewards.credit_export`): ids, tokens, offsets, rewards, reward, method, ..."""
        return {"prompt_id": self.prompt_id, "response_id": self.response_id, "tokens": list(self.tokens),
                "offsets": [list(o) for o in self.offsets], "rewards": list(self.rewards), "reward": self.reward,
                "method": self.method, "twin_reward": self.twin_reward, "residual": self.residual,
                "unseen_tokens": self.unseen_tokens, "encoder": self.encoder, "attributed_with": self.attributed_with,
                "response": self.response}


@dataclass(frozen=True)
class _View:
    """One text the reward embeds with response tokens in it: its tokens and, per position, the response token
    there (-1: a special token or a prompt token)."""

    tokens: Tokens
    response_index: list[int]


class TokenCreditor:
    """Credit for one reward model: loads the twin once, then `credit` runs per response."""

    def __init__(self, model: RewardModel, config: CreditConfig | None = None) -> None:
        self.model = model
        self.config = config or CreditConfig()
        self.twin = MiniLMTwin(model.encoder)
        self.parts = MODE_PARTS[model.features]
        self.reward_fn = torch_reward(model.head) if self.config.method == "gradient" else None

    def credit(self, prompt: str, response: str, prompt_id: str = "", response_id: str = "") -> TokenCredit:
        spans = self.model.encoder.token_spans([response])[0]  # type: ignore[attr-defined]
        if not spans:
            raise DataError("the response has no tokens to give credit to (empty or blank)", field="response")
        views = self._views(prompt, response, spans)
        seen = sorted({i for view in views for i in view.response_index if i >= 0})
        if not seen:
            raise DataError("none of the response's tokens reaches the encoder", field="response")
        reward = float(self.model.score([prompt], [response])[0])
        if not math.isfinite(reward):
            raise ModelError(f"the model's reward of response {response_id or response[:40]!r} is not finite")
        prompt_vec = self.twin.embed(prompt_view(prompt)) if "p" in self.parts else None
        if self.config.method == "attention":
            attributions = self._attention(views, len(spans)) * reward
            twin_reward = float(self.model.predict(self._features(views, prompt_vec).numpy())[0])
        else:
            attributions, twin_reward = self._integrated_gradients(views, prompt_vec, len(spans))
        residual = reward - float(attributions.sum())
        attributions[seen] += residual / len(seen)
        return TokenCredit(prompt_id, response_id, response, [response[a:b] for a, b in spans], list(spans),
                           attributions.tolist(), reward, self.config.method, twin_reward, residual,
                           len(spans) - len(seen), self.model.encoder.spec, self.twin.name)

    # ------------------------------------------------------------------ the texts the reward embeds
    def _views(self, prompt: str, response: str, spans: list[tuple[int, int]]) -> list[_View]:
        by_offset = {span: i for i, span in enumerate(spans)}
        views = []
        if any("r" in part for part in self.parts):
            tokens = self.twin.tokens(response)
            views.append(_View(tokens, [-1 if s else by_offset.get(o, -1) for o, s in zip(tokens.offsets, tokens.special)]))
        if "j" in self.parts:
            text = joint_texts([prompt], [response], self.model.encoder)[0]
            start = _response_start(text, response)
            tokens = self.twin.tokens(text)
            views.append(_View(tokens, [-1 if s or a < start else by_offset.get((a - start, b - start), -1)
                                        for (a, b), s in zip(tokens.offsets, tokens.special)]))
        return views

    def _features(self, views: list[_View], prompt_vec: torch.Tensor | None,
                  pooled: list[torch.Tensor] | None = None) -> torch.Tensor:
        """Feature rows in the model's mode from each view's pooled vectors ((batch, 384) each; default: the real
        texts, no gradient) and the prompt's vector."""
        if pooled is None:
            with torch.no_grad():
                pooled = [self.twin.pooled(self.twin.word_embeddings(v.tokens.ids)[None]) for v in views]
        vectors = dict(zip(self._view_names(), pooled))
        if prompt_vec is not None:
            vectors["p"] = prompt_vec.expand(pooled[0].shape[0], -1)
            if "r" in vectors:
                vectors["r*p"] = vectors["r"] * vectors["p"]
        return torch.cat([vectors[name] for name in self.parts], dim=1)

    def _view_names(self) -> list[str]:
        return (["r"] if any("r" in part for part in self.parts) else []) + (["j"] if "j" in self.parts else [])

    # ------------------------------------------------------------------ the two methods
    def _attention(self, views: list[_View], n_tokens: int) -> np.ndarray:
        """Each view's attention from the pooled positions onto response tokens, normalised, averaged over views."""
        shares = np.zeros(n_tokens)
        for view in views:
            received = self.twin.last_attention(view.tokens.ids).mean(0)  # mean pooling reads every row
            share = np.zeros(n_tokens)
            for position, index in enumerate(view.response_index):
                if index >= 0:
                    share[index] += received[position]
            total = share.sum()
            shares += share / total if total > 0 else share
        return shares / shares.sum()

    def _integrated_gradients(self, views: list[_View], prompt_vec: torch.Tensor | None,
                              n_tokens: int) -> tuple[np.ndarray, float]:
        """Integrated gradients per response token (summed over views) and the twin's reward of the real texts."""
        assert self.reward_fn is not None
        inputs = [self.twin.word_embeddings(v.tokens.ids) for v in views]
        baselines = []
        for view, x in zip(views, inputs):
            varied = torch.tensor([i >= 0 for i in view.response_index])
            pad = self.twin.word_embeddings([self.twin.pad_id])[0]
            baselines.append(torch.where(varied[:, None], pad, x))

        def reward_at(embeds: list[torch.Tensor]) -> torch.Tensor:
            pooled = [self.twin.pooled(e) for e in embeds]
            return self.reward_fn(self._features(views, prompt_vec, pooled))  # type: ignore[misc]

        steps = self.config.steps
        alphas = (torch.arange(steps, dtype=torch.float32) + 0.5) / steps
        grads = [torch.zeros_like(x) for x in inputs]
        for chunk in alphas.split(IG_CHUNK):
            a = chunk[:, None, None]
            embeds = [(b + a * (x - b)).requires_grad_(True) for x, b in zip(inputs, baselines)]
            reward_at(embeds).sum().backward()
            for g, e in zip(grads, embeds):
                assert e.grad is not None
                g += e.grad.sum(0)
        attributions = np.zeros(n_tokens)
        for view, x, b, g in zip(views, inputs, baselines, grads):
            per_position = ((x - b) * g / steps).sum(-1).double().numpy()
            for position, index in enumerate(view.response_index):
                if index >= 0:
                    attributions[index] += per_position[position]
        with torch.no_grad():
            twin_reward = float(reward_at([x[None] for x in inputs])[0])
        return attributions, twin_reward


def _response_start(joint: str, response: str) -> int:
    """Where the response's (possibly cut) start begins in its joint text: right after the template's answer tag."""
    before, _, after = JOINT_TEMPLATE.partition("{response}")
    if after:
        raise ModelError("token credit expects the joint template to end with the response")
    tag = before.split("{prompt}")[-1]
    for keep in range(len(response), -1, -1):
        start = len(joint) - keep
        if joint.endswith(response[:keep]) and joint[:start].endswith(tag):
            return start
    raise ModelError("cannot find the response in its joint text")


def token_credit(model: RewardModel, prompts: Sequence[str], responses: Sequence[str], *,
                 ids: Sequence[tuple[str, str]] | None = None, config: CreditConfig | None = None,
                 on_progress: Callable[[int, int], None] | None = None) -> list[TokenCredit]:
    """Per-token rewards of each (prompt, response) under ``model``; ``ids``: (prompt_id, response_id) per pair
    (default ``p<n>``/``r<n>``, n from 1). A blank response is a `DataError` naming its row (1-based)."""
    if len(prompts) != len(responses) or (ids is not None and len(ids) != len(responses)):
        raise ModelError("prompts, responses and ids must have the same length")
    creditor = TokenCreditor(model, config)
    out = []
    for i, (prompt, response) in enumerate(zip(prompts, responses)):
        prompt_id, response_id = ids[i] if ids is not None else (f"p{i + 1}", f"r{i + 1}")
        try:
            out.append(creditor.credit(prompt, response, prompt_id, response_id))
        except DataError as exc:
            raise DataError(exc.reason, row=i + 1, field="response") from None
        if on_progress is not None:
            on_progress(i + 1, len(responses))
    return out


def summarize_credits(credits: Sequence[TokenCredit], seed: int = 0) -> dict[str, Estimate]:
    """Means over responses with 95% CIs by prompt: ``twin_gap`` |twin reward − model reward| (how far the attributed
    encoder is from the model's; 0 for ``minilm``), ``residual`` (the reward spread evenly), ``top_share`` (the top
    token's share of the total |credit|: how concentrated the credit is)."""
    if not credits:
        raise ModelError("no credits to summarize")
    bootstrap = GroupBootstrap(np.array([c.prompt_id for c in credits]), seed=seed)
    gap = np.array([abs(c.twin_reward - c.reward) for c in credits])
    residual = np.array([c.residual for c in credits])
    top = np.array([max(abs(r) for r in c.rewards) / (sum(abs(r) for r in c.rewards) or 1.0) for c in credits])
    return {"twin_gap": bootstrap.mean(gap), "residual": bootstrap.mean(residual), "top_share": bootstrap.mean(top)}


def seconds_per_response(model: RewardModel, prompts: Sequence[str], responses: Sequence[str],
                         config: CreditConfig | None = None) -> tuple[float, list[TokenCredit]]:
    """Wall seconds per response of `token_credit` once the twin is loaded (for benchmarks and the README)."""
    creditor = TokenCreditor(model, config)
    started = time.perf_counter()
    credits = [creditor.credit(p, r) for p, r in zip(prompts, responses)]
    return (time.perf_counter() - started) / max(1, len(responses)), credits
