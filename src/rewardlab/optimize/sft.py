"""Supervised fine-tuning on demonstrations, small enough for a laptop CPU.

The loss is next-token cross-entropy on the response tokens only (the prompt is context, not a target).
By default only the top ``trainable_layers`` decoder blocks and the final norm learn, with the embeddings
(tied to the output layer in SmolLM2) frozen: the backward pass then stops a few blocks down, which is
what makes a few hundred demonstrations a matter of minutes on two cores. This is enough to move the
policy towards the demonstrations' style and content — its use here is the fine-tuned-vs-base contrast
of a demonstration reward — not a recipe for a strong chat model.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rewardlab.generate.base import ChatPrompt, GenerationError
from rewardlab.generate.local import LocalGenerator

IGNORE_INDEX = -100  # positions the loss skips (prompt and padding)
#: `memorisation_warning` speaks when each demonstration was seen this many times and the loss fell below this share
MEMORISATION_PASSES = 4
MEMORISATION_RATIO = 0.1


@dataclass(frozen=True)
class SftConfig:
    steps: int = 60
    batch_size: int = 8
    learning_rate: float = 1e-4
    trainable_layers: int = 8  # 0 = every parameter, embeddings included
    max_prompt_tokens: int = 96  # a longer prompt keeps its end (the latest turns)
    max_response_tokens: int = 64
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "max_prompt_tokens", "max_response_tokens"):
            if getattr(self, name) < 1:
                raise GenerationError(f"SFT {name} must be at least 1")
        if self.trainable_layers < 0 or self.learning_rate <= 0:
            raise GenerationError("SFT needs trainable_layers >= 0 and learning_rate > 0")


@dataclass
class SftResult:
    path: Path
    losses: list[float] = field(default_factory=list)  # mean response-token loss of each step
    trainable_parameters: int = 0
    examples: int = 0


def decoder_layers(model: Any) -> list[Any]:
    """The stack of transformer blocks of a causal LM (Llama-style ``model.layers`` or GPT-2 ``transformer.h``)."""
    for owner, name in (("model", "layers"), ("transformer", "h"), ("gpt_neox", "layers")):
        base = getattr(model, owner, None)
        if base is not None and hasattr(base, name):
            return list(getattr(base, name))
    raise GenerationError(f"cannot find the decoder blocks of a {type(model).__name__}; use trainable_layers=0")


def _final_norm(model: Any) -> Any | None:
    for owner, name in (("model", "norm"), ("transformer", "ln_f"), ("gpt_neox", "final_layer_norm")):
        base = getattr(model, owner, None)
        if base is not None and hasattr(base, name):
            return getattr(base, name)
    return None


def freeze_below(model: Any, trainable_layers: int) -> int:
    """Make only the top ``trainable_layers`` blocks and the final norm trainable; returns the parameter count."""
    if trainable_layers == 0:
        for p in model.parameters():
            p.requires_grad_(True)
    else:
        for p in model.parameters():
            p.requires_grad_(False)
        norm = _final_norm(model)
        for module in [*decoder_layers(model)[-trainable_layers:], *([norm] if norm is not None else [])]:
            for p in module.parameters():
                p.requires_grad_(True)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def memorisation_warning(losses: Sequence[float], examples: int, config: SftConfig) -> str | None:
    """A warning when the loss collapsed while each demonstration was seen many times: with no held-out loss, that is
    the sign of a model that learned the demonstrations by heart rather than their style (None otherwise)."""
    if len(losses) < 2 or not examples:
        return None
    passes = config.steps * config.batch_size / examples
    start, end = losses[0], sum(losses[-5:]) / len(losses[-5:])
    if passes < MEMORISATION_PASSES or end > MEMORISATION_RATIO * start:
        return None
    return (f"SFT loss fell from {start:.2f} to {end:.3f} while each of the {examples} demonstrations was seen about "
            f"{passes:.0f} times: the model has most likely memorised them (there is no held-out loss to say otherwise); "
            "use more demonstrations, fewer --steps or a lower --learning-rate")


def plain_weights(model: Any) -> Any:
    """Let a model loaded from a GGUF file save as an ordinary float32 checkpoint.

    transformers de-quantises GGUF weights on load but keeps a GGUF quantizer marker, and refuses to
    save a model carrying it; the weights in memory are plain tensors, so the marker is dropped.
    """
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is not None and str(getattr(quantizer.quantization_config, "quant_method", "")).lower().endswith("gguf"):
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        if hasattr(model, "is_quantized"):
            model.is_quantized = False
    return model


def tokenize_example(generator: LocalGenerator, prompt: ChatPrompt, response: str,
                     config: SftConfig) -> tuple[list[int], list[int]]:
    """(input ids, labels): the templated prompt's tail, then the response and an end-of-turn token."""
    tokenizer = generator.tokenizer
    prompt_ids = generator._encode([generator.render(prompt)], None)["input_ids"][0].tolist()[-config.max_prompt_tokens:]
    response_ids = tokenizer(response, add_special_tokens=False)["input_ids"][:config.max_response_tokens]
    # the token generation stops on (for chat models, the end-of-turn marker)
    eos = min(generator._eos_ids) if generator._eos_ids else tokenizer.eos_token_id
    if eos is not None and len(response_ids) < config.max_response_tokens:
        response_ids = [*response_ids, eos]  # a finished answer teaches the model to stop
    context = generator.context_length
    if context is not None and len(prompt_ids) + len(response_ids) > context:  # a small model's window: keep the end
        response_ids = response_ids[:context - 1]
        prompt_ids = prompt_ids[len(prompt_ids) + len(response_ids) - context:]
    return prompt_ids + response_ids, [IGNORE_INDEX] * len(prompt_ids) + response_ids


def fine_tune_on_demonstrations(generator: LocalGenerator, examples: Sequence[tuple[ChatPrompt, str]], out_dir: str | Path,
                                config: SftConfig | None = None,
                                on_step: Callable[[int, int, float], None] | None = None) -> SftResult:
    """Fine-tune ``generator``'s model (in place) on (prompt, demonstration) pairs and save it to ``out_dir``
    as a Hugging Face folder that `LocalGenerator` (and `rewardlab generate --model`) loads."""
    import numpy as np
    import torch

    config = config or SftConfig()
    if not examples:
        raise GenerationError("no demonstrations to fine-tune on")
    generator.load()
    model, tokenizer = generator._model, generator.tokenizer
    encoded = [tokenize_example(generator, p, r, config) for p, r in examples]
    trainable = freeze_below(model, config.trainable_layers)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=config.learning_rate)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * min(step, config.steps) / config.steps)))
    rng = np.random.default_rng(config.seed)
    order: list[int] = []
    result = SftResult(Path(out_dir), trainable_parameters=trainable, examples=len(encoded))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    model.train()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        for step in range(1, config.steps + 1):
            if len(order) < config.batch_size:  # epochs of shuffled examples, a batch never spans a reshuffle
                order = [*order, *rng.permutation(len(encoded)).tolist()]
            batch, order = [encoded[i] for i in order[:config.batch_size]], order[config.batch_size:]
            width = max(len(ids) for ids, _ in batch)
            input_ids = torch.tensor([ids + [pad] * (width - len(ids)) for ids, _ in batch])
            labels = torch.tensor([lab + [IGNORE_INDEX] * (width - len(lab)) for _, lab in batch])
            mask = torch.tensor([[1] * len(ids) + [0] * (width - len(ids)) for ids, _ in batch])
            loss = model(input_ids=input_ids, attention_mask=mask, labels=labels).loss
            loss.backward()
            optimizer.step()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
            result.losses.append(float(loss.detach()))
            if on_step:
                on_step(step, config.steps, result.losses[-1])
    model.eval()
    note = memorisation_warning(result.losses, len(encoded), config)
    if note:
        warnings.warn(note, stacklevel=2)
    for p in model.parameters():
        p.requires_grad_(False)
    result.path.mkdir(parents=True, exist_ok=True)
    plain_weights(model).save_pretrained(result.path)
    tokenizer.save_pretrained(result.path)
    (result.path / "rewardlab_sft.json").write_text(
        json.dumps({"base": generator.id, "config": asdict(config), "examples": len(encoded),
                                  "trainable_parameters": trainable, "losses": result.losses}, indent=2),
        encoding="utf-8")
    return result
