"""What a policy-optimization run starts from: its prompts (fitted to a token budget) and the policy model."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rewardlab.generate.base import ChatPrompt
from rewardlab.optimize.policy_eval import PolicySampler
from rewardlab.optimize.trl_rewards import PolicyError, as_messages


def load_prompts(source: str | Path, field: str = "prompt", limit: int | None = None) -> list[ChatPrompt]:
    """Prompts from a dataset name (`rewardlab datasets`), a .txt file (one per line), a preference file
    (HH-RLHF or TRL: its prompts) or any record file with a ``field`` of prompt text. HH dialogue text
    becomes chat messages; other text is one user turn."""
    from rewardlab.data.load import load_feedback
    from rewardlab.data.records import read_texts
    from rewardlab.data.registry import REGISTRY, load_named

    path = Path(source)
    dataset = None
    if str(source) in REGISTRY and not path.exists():
        dataset = load_named(str(source))
    elif path.is_file() and not path.name.lower().removesuffix(".gz").endswith(".txt") and _is_preference_file(path):
        dataset = load_feedback(path, on_empty="skip")
    if dataset is not None:
        prompts: list[ChatPrompt] = []
        for prompt in dataset.prompts.values():
            if prompt.messages:
                prompts.append([{"role": m.role, "content": m.content} for m in prompt.messages])
            else:
                prompts.append(as_messages(prompt.text))
        return prompts[:limit] if limit is not None else prompts
    return [as_messages(text) for text in read_texts(path, field, limit)]


def _is_preference_file(path: Path) -> bool:
    from rewardlab.data.records import iter_records

    return any({"chosen", "rejected"} <= set(record) for _, record in iter_records(path, limit=1))


def fit_prompts(prompts: Sequence[ChatPrompt], sampler: PolicySampler, max_tokens: int) -> tuple[list[ChatPrompt], int]:
    """Prompts that fit in ``max_tokens`` once rendered; a long dialogue loses its earliest turns (it always
    starts at a user turn). Returns the prompts and how many could not be made to fit (left out, counted)."""
    kept: list[ChatPrompt] = []
    too_long = 0
    for prompt in prompts:
        messages = as_messages(prompt)
        starts = [i for i, m in enumerate(messages) if m["role"] == "user"] or [0]
        fitted = next((messages[i:] for i in starts if len(sampler.render(messages[i:])) <= max_tokens), None)
        if fitted is None:
            too_long += 1
        else:
            kept.append(fitted)
    return kept, too_long


def load_policy(model: str | None, gguf_file: str | None, workdir: Path) -> tuple[Any, Any, str]:
    """(model, tokenizer, id) in float32. A GGUF is de-quantised and written as a plain model folder under
    ``workdir``, because TRL builds GRPO's reference model from the policy's folder and transformers will
    neither save nor train a model still marked as GGUF-quantised."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rewardlab.embed.last_token import _quiet_gguf_progress, resolve_model_location
    from rewardlab.generate.local import default_model_path
    from rewardlab.optimize.sft import plain_weights

    source, gguf = (gguf_file, None) if model is None and gguf_file is not None else (model, gguf_file)
    folder, gguf = resolve_model_location(default_model_path() if source is None else source, gguf, PolicyError)
    name = gguf or folder.name
    try:
        if gguf is None:
            tokenizer = AutoTokenizer.from_pretrained(str(folder))
            policy = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32)
        else:
            with _quiet_gguf_progress():
                tokenizer = AutoTokenizer.from_pretrained(str(folder), gguf_file=gguf)
                quantised = AutoModelForCausalLM.from_pretrained(str(folder), gguf_file=gguf, dtype=torch.float32)
            converted = workdir / "initial-policy"
            plain_weights(quantised).save_pretrained(converted)
            tokenizer.save_pretrained(converted)
            del quantised
            policy = AutoModelForCausalLM.from_pretrained(str(converted), dtype=torch.float32)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise PolicyError(f"{folder / (gguf or '')}: cannot load the policy model: {exc}") from exc
    if tokenizer.pad_token_id is None:
        if tokenizer.eos_token_id is None:
            raise PolicyError(f"{folder}: the tokenizer has neither a pad nor an end-of-sequence token")
        tokenizer.pad_token = tokenizer.eos_token
    return policy, tokenizer, name


def frozen_copy(model: Any) -> Any:
    """The reference policy: a copy that never trains."""
    reference = copy.deepcopy(model).eval()
    for parameter in reference.parameters():
        parameter.requires_grad_(False)
    return reference
