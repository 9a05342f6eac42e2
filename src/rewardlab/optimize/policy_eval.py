"""Watching a policy while it is optimized: samples, a KL estimate to the frozen reference, proxy and gold reward.

The trainers' own numbers are not comparable across methods (GRPO logs a per-token KL approximation on
its training batch, DPO logs none), so every run is measured the same way here: on a fixed set of eval
prompts, sample from the current policy with a fixed seed, then

- **KL(π‖π_ref)** is estimated by Monte Carlo at the sequence level: for each sample y ~ π(·|x),
  Σ_t [log π(y_t | x, y_<t) − log π_ref(y_t | x, y_<t)] over its tokens (the end-of-sequence token
  included), averaged over samples. This is unbiased for the KL of the (length-capped) sampling
  distributions but noisy, and a single estimate can come out slightly negative.
- **proxy** is the reward model being optimized, **gold** a held-out one the policy never saw; the gap
  between their trends is reward-model over-optimization (Gao et al. 2022, "Scaling laws for reward
  model overoptimization").

Every number gets a cluster-bootstrap 95% CI over eval prompts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rewardlab.evaluate.bootstrap import Estimate, GroupBootstrap
from rewardlab.generate.base import ChatPrompt
from rewardlab.optimize.trl_rewards import PolicyError, RewardFunction, as_messages


@dataclass
class Samples:
    """Sampled completions as token ids (cut after the first end-of-sequence token) and as text."""

    prompt_index: list[int]
    prompt_ids: list[list[int]]
    completion_ids: list[list[int]]
    texts: list[str]


class PolicySampler:
    """Samples from an in-memory causal LM (the policy being trained), with its token ids.

    It is also a `Generator`, so `label_on_policy_pairs` can draw DPO pairs from the current policy.
    Prompts go through the tokenizer's chat template when it has one; sampling runs in a forked torch RNG
    so a seed gives the same samples and the trainer's random state is left alone.
    """

    def __init__(self, model: Any, tokenizer: Any, batch_size: int = 16, name: str = "policy") -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.name = name
        eos = model.generation_config.eos_token_id
        eos_list = eos if isinstance(eos, list) else [eos]
        self.eos_ids = {int(e) for e in [*eos_list, tokenizer.eos_token_id] if e is not None}
        if tokenizer.pad_token_id is not None:
            self.pad_id = int(tokenizer.pad_token_id)
        elif self.eos_ids:
            self.pad_id = min(self.eos_ids)
        else:
            raise PolicyError("the tokenizer has neither a pad nor an end-of-sequence token")

    @property
    def id(self) -> str:
        return f"policy:{self.name}"

    def render(self, prompt: ChatPrompt) -> list[int]:
        """Token ids the model continues: the chat template with a generation prompt, else HH-style text."""
        tokenizer = self.tokenizer
        if getattr(tokenizer, "chat_template", None):
            text = tokenizer.apply_chat_template(as_messages(prompt), add_generation_prompt=True, tokenize=False)
            return list(tokenizer(text, add_special_tokens=False)["input_ids"])
        return list(tokenizer(plain_prompt(prompt))["input_ids"])

    def sample(self, prompts: Sequence[ChatPrompt], n: int = 1, temperature: float = 1.0, top_p: float = 1.0,
               max_new_tokens: int = 64, seed: int | None = 0) -> Samples:
        """``n`` samples per prompt, prompt by prompt in order (sample ``i`` answers prompt ``i // n``)."""
        import torch

        rendered = [self.render(p) for p in prompts]
        out = Samples([], [], [], [])
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad(), torch.random.fork_rng(devices=[]):
                if seed is not None:
                    torch.manual_seed(seed)
                per_batch = max(1, self.batch_size // n)
                for start in range(0, len(rendered), per_batch):
                    self._sample_batch(rendered[start:start + per_batch], start, n, temperature, top_p, max_new_tokens, out)
        finally:
            self.model.train(was_training)
        return out

    def _sample_batch(self, prompt_ids: list[list[int]], offset: int, n: int, temperature: float, top_p: float,
                      max_new_tokens: int, out: Samples) -> None:
        from transformers import GenerationConfig

        input_ids, mask = (t.to(self.model.device) for t in left_pad(prompt_ids, self.pad_id))
        # a fresh config, not the checkpoint's: its top_k / repetition penalty would change the distribution
        # whose KL is estimated
        config = GenerationConfig(max_new_tokens=max_new_tokens, do_sample=temperature > 0,
                                  temperature=temperature if temperature > 0 else None,
                                  top_p=top_p if temperature > 0 else None, top_k=None,
                                  num_return_sequences=n, eos_token_id=sorted(self.eos_ids) or None,
                                  pad_token_id=self.pad_id)
        generated = self.model.generate(input_ids=input_ids, attention_mask=mask, generation_config=config)
        for row, tokens in enumerate(generated[:, input_ids.shape[1]:].tolist()):
            end = next((i for i, t in enumerate(tokens) if t in self.eos_ids), None)
            kept = tokens if end is None else tokens[:end + 1]
            out.prompt_index.append(offset + row // n)
            out.prompt_ids.append(prompt_ids[row // n])
            out.completion_ids.append(kept)
            out.texts.append(self.tokenizer.decode(kept, skip_special_tokens=True).strip())

    def generate(self, prompts: Sequence[ChatPrompt], n: int = 1, temperature: float = 1.0, top_p: float = 1.0,
                 max_new_tokens: int = 128, seed: int | None = 0) -> list[list[str]]:
        samples = self.sample(prompts, n, temperature, top_p, max_new_tokens, seed)
        return [samples.texts[i:i + n] for i in range(0, len(samples.texts), n)]


def plain_prompt(prompt: ChatPrompt) -> str:
    """A prompt for a model without a chat template: HH dialogue text ending where the assistant speaks."""
    from rewardlab.data.hh_rlhf import ASSISTANT_TAG, dialogue_text

    return dialogue_text(as_messages(prompt)).lstrip() + ASSISTANT_TAG


def left_pad(rows: list[list[int]], pad_id: int) -> tuple[Any, Any]:
    """(input_ids, attention_mask) tensors with padding before each row, where a decoder-only model wants it."""
    import torch

    width = max(len(r) for r in rows)
    ids = torch.tensor([[pad_id] * (width - len(r)) + r for r in rows], dtype=torch.long)
    mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows], dtype=torch.long)
    return ids, mask


def sequence_logprobs(model: Any, samples: Samples, pad_id: int, temperature: float = 1.0, batch_size: int = 8) -> np.ndarray:
    """log π(y | x) of every sample: the sum of its completion tokens' log-probabilities (logits / temperature).

    Prompts are left-padded and completions right-padded, with explicit position ids, so padding changes
    no sequence's value.
    """
    import torch

    values: list[float] = []
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for start in range(0, len(samples.completion_ids), batch_size):
                prompts = samples.prompt_ids[start:start + batch_size]
                completions = samples.completion_ids[start:start + batch_size]
                values.extend(_batch_logprobs(model, prompts, completions, pad_id, temperature))
    finally:
        model.train(was_training)
    return np.asarray(values, dtype=np.float64)


def _batch_logprobs(model: Any, prompts: list[list[int]], completions: list[list[int]], pad_id: int,
                    temperature: float) -> list[float]:
    import torch

    prompt_ids, prompt_mask = left_pad(prompts, pad_id)
    width = max(len(c) for c in completions)
    completion_ids = torch.tensor([c + [pad_id] * (width - len(c)) for c in completions], dtype=torch.long)
    completion_mask = torch.tensor([[1] * len(c) + [0] * (width - len(c)) for c in completions], dtype=torch.long)
    input_ids = torch.cat([prompt_ids, completion_ids], dim=1)
    mask = torch.cat([prompt_mask, completion_mask], dim=1)
    input_ids, mask, completion_ids, completion_mask = (t.to(model.device) for t in (input_ids, mask, completion_ids,
                                                                                      completion_mask))
    positions = (mask.cumsum(1) - 1).clamp(min=0)
    # the logits at the last prompt position and every completion position but the last predict the completion
    logits = model(input_ids=input_ids, attention_mask=mask, position_ids=positions, logits_to_keep=width + 1).logits
    logp = torch.log_softmax(logits[:, :-1].float() / max(temperature, 1e-6), dim=-1)
    token_logp = logp.gather(-1, completion_ids.unsqueeze(-1)).squeeze(-1) * completion_mask
    return [float(v) for v in token_logp.sum(1)]


def estimate_kl(policy: Any, reference: Any, tokenizer: Any, prompts: Sequence[ChatPrompt], n: int = 1,
                max_new_tokens: int = 64, temperature: float = 1.0, seed: int = 0, batch_size: int = 16) -> np.ndarray:
    """Per-sample sequence-level Monte Carlo KL(π‖π_ref): log π(y|x) − log π_ref(y|x) for y ~ π (see module doc)."""
    sampler = PolicySampler(policy, tokenizer, batch_size)
    samples = sampler.sample(prompts, n, temperature, 1.0, max_new_tokens, seed)
    return (sequence_logprobs(policy, samples, sampler.pad_id, temperature, batch_size)
            - sequence_logprobs(reference, samples, sampler.pad_id, temperature, batch_size))


@dataclass
class EvalResult:
    """One evaluation of the policy: per-sample proxy / gold reward and KL, sample texts."""

    step: int
    prompt_index: np.ndarray
    proxy: np.ndarray
    gold: np.ndarray | None
    kl: np.ndarray
    prompts: list[str]
    texts: list[str]

    def estimates(self, n_resamples: int = 1000, seed: int = 0) -> dict[str, Estimate]:
        """Means with cluster-bootstrap 95% CIs over eval prompts."""
        boot = GroupBootstrap(self.prompt_index, n_resamples, seed)
        out = {"proxy": boot.mean(self.proxy), "kl": boot.mean(self.kl)}
        if self.gold is not None:
            out["gold"] = boot.mean(self.gold)
        return out

    def examples(self, k: int = 3) -> list[dict[str, Any]]:
        """The first ``k`` samples, for the log."""
        return [{"prompt": self.prompts[int(i)], "completion": t, "proxy": round(float(r), 4)}
                for i, t, r in zip(self.prompt_index[:k], self.texts[:k], self.proxy[:k])]


class PolicyEvaluator:
    """Evaluates a policy on fixed prompts with fixed sampling seed (common random numbers across steps)."""

    def __init__(self, prompts: Sequence[ChatPrompt], reference: Any, tokenizer: Any, proxy: RewardFunction,
                 gold: RewardFunction | None = None, samples_per_prompt: int = 1, max_new_tokens: int = 64,
                 temperature: float = 1.0, seed: int = 0, batch_size: int = 16) -> None:
        if not prompts:
            raise PolicyError("no eval prompts: KL and the gold check need at least one")
        if temperature <= 0:
            raise PolicyError("the KL estimate needs samples from the policy: temperature must be > 0")
        self.prompts = list(prompts)
        self.reference = reference
        self.tokenizer = tokenizer
        self.proxy = proxy
        self.gold = gold
        self.samples_per_prompt = samples_per_prompt
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature
        self.seed = seed
        self.batch_size = batch_size
        self._labels = [as_messages(p)[-1]["content"] for p in self.prompts]

    def evaluate(self, policy: Any, step: int) -> EvalResult:
        sampler = PolicySampler(policy, self.tokenizer, self.batch_size)
        samples = sampler.sample(self.prompts, self.samples_per_prompt, self.temperature, 1.0, self.max_new_tokens,
                                 self.seed)
        kl = (sequence_logprobs(policy, samples, sampler.pad_id, self.temperature, self.batch_size)
              - sequence_logprobs(self.reference, samples, sampler.pad_id, self.temperature, self.batch_size))
        prompts = [self.prompts[i] for i in samples.prompt_index]
        proxy = self.proxy.score(prompts, samples.texts)
        gold = None if self.gold is None else self.gold.score(prompts, samples.texts)
        return EvalResult(step, np.asarray(samples.prompt_index), proxy, gold, kl, self._labels, samples.texts)


def compare(start: EvalResult, end: EvalResult, n_resamples: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Start and end estimates and the paired change end − start (same prompts, same sample slots)."""
    boot = GroupBootstrap(start.prompt_index, n_resamples, seed)
    first, last = start.estimates(n_resamples, seed), end.estimates(n_resamples, seed)
    out: dict[str, Any] = {}
    for key in first:
        before, after = getattr(start, key), getattr(end, key)
        out[key] = {"start": first[key].as_dict(), "end": last[key].as_dict(),
                    "change": boot.mean(np.asarray(after) - np.asarray(before)).as_dict()}
    return out
