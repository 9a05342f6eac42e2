"""`OpenAIGenerator`: sample responses from any OpenAI-compatible chat server (vLLM, llama.cpp, OpenAI, ours).

One chat-completions request per prompt asks for all ``n`` samples; servers that ignore ``n`` (some
return a single choice) are asked again, with the seed moved on, until ``n`` texts are in hand. Prompts
run ``concurrency`` at a time, since a remote server batches requests better than we can.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Literal

from rewardlab.generate.base import ChatPrompt, Completion, GenerationError, SamplingParams, as_chat


class OpenAIGenerator:
    """Chat completions from ``base_url`` (default: the ``openai`` package's own, api.openai.com)."""

    def __init__(self, model: str, base_url: str | None = None, api_key: str = "none", timeout: float = 120.0,
                 max_retries: int = 2, concurrency: int = 1, system_prompt: str | None = None) -> None:
        try:
            import openai
        except ImportError:
            raise GenerationError("OpenAIGenerator needs the 'openai' package: pip install 'rewardlab[generate]'") from None
        if concurrency < 1:
            raise GenerationError("concurrency must be at least 1")
        self.model = model
        self.base_url = base_url
        self.concurrency = concurrency
        self.system_prompt = system_prompt
        self._openai = openai
        self._client = openai.OpenAI(base_url=base_url, api_key=api_key or "none", timeout=timeout,
                                     max_retries=max_retries)

    @property
    def id(self) -> str:
        """The model name as the server knows it, e.g. ``openai:gpt-4o-mini``."""
        return f"openai:{self.model}"

    def _messages(self, prompt: ChatPrompt) -> list[dict[str, str]]:
        chat = as_chat(prompt)
        if self.system_prompt and not any(m.get("role") == "system" for m in chat):
            chat = [{"role": "system", "content": self.system_prompt}, *chat]
        return chat

    def complete_one(self, prompt: ChatPrompt, params: SamplingParams) -> list[Completion]:
        """``params.n`` completions of one prompt."""
        completions: list[Completion] = []
        attempt = 0
        while len(completions) < params.n:
            seed = None if params.seed is None else params.seed + attempt
            try:
                response = self._client.chat.completions.create(
                    model=self.model, messages=self._messages(prompt),  # type: ignore[arg-type]
                    n=params.n - len(completions), temperature=params.temperature, top_p=params.top_p,
                    max_tokens=params.max_new_tokens, seed=seed)
            except self._openai.OpenAIError as exc:
                raise GenerationError(f"{self.base_url or 'OpenAI API'} ({self.model}): {exc}") from exc
            if not response.choices:
                raise GenerationError(f"{self.base_url or 'OpenAI API'} ({self.model}): the server returned no choices")
            tokens = response.usage.completion_tokens if response.usage else 0
            for choice in response.choices:
                reason: Literal["stop", "length"] = "stop" if choice.finish_reason == "stop" else "length"
                # usage counts the whole response; share it out so totals still add up
                completions.append(Completion(choice.message.content or "", tokens // len(response.choices), reason))
            attempt += 1
        return completions[:params.n]

    def complete(self, prompts: Sequence[ChatPrompt], params: SamplingParams | None = None,
                 on_done: Callable[[int], None] | None = None) -> list[list[Completion]]:
        """``params.n`` completions per prompt, in prompt order; ``on_done(k)`` after each prompt's k-th finish."""
        params = params or SamplingParams()
        results: list[list[Completion]] = []
        if self.concurrency == 1:
            for prompt in prompts:
                results.append(self.complete_one(prompt, params))
                if on_done:
                    on_done(len(results))
            return results
        with ThreadPoolExecutor(self.concurrency) as pool:
            for row in pool.map(lambda p: self.complete_one(p, params), prompts):
                results.append(row)
                if on_done:
                    on_done(len(results))
        return results

    def generate(self, prompts: Sequence[ChatPrompt], n: int = 1, temperature: float = 1.0, top_p: float = 1.0,
                 max_new_tokens: int = 128, seed: int | None = 0,
                 on_done: Callable[[int], None] | None = None) -> list[list[str]]:
        """``n`` response texts per prompt; ``on_done(k)`` once the first ``k`` prompts are answered."""
        params = SamplingParams(n, temperature, top_p, max_new_tokens, seed)
        return [[c.text for c in row] for row in self.complete(prompts, params, on_done)]

    def list_models(self) -> list[str]:
        """Model ids the server offers (a cheap way to check the URL before a long run)."""
        try:
            return [m.id for m in self._client.models.list()]
        except self._openai.OpenAIError as exc:
            raise GenerationError(f"{self.base_url or 'OpenAI API'}: {exc}") from exc

