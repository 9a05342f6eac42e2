"""Sample candidate responses from an LLM: in-process (transformers) or from any OpenAI-compatible server.

Both generators share one call, ``generate(prompts, n=..., temperature=..., top_p=..., max_new_tokens=...,
seed=...)`` → ``n`` texts per prompt, so best-of-N pools can come from a local model or a remote server
without changing the code that builds them.
"""

from __future__ import annotations

from rewardlab.generate.base import Chat, ChatPrompt, Completion, GenerationError, Generator, SamplingParams
from rewardlab.generate.local import LocalGenerator  # torch/transformers load lazily, on first use
from rewardlab.generate.openai_client import OpenAIGenerator  # likewise the openai package

__all__ = ["Chat", "Completion", "GenerationError", "Generator", "LocalGenerator", "OpenAIGenerator", "ChatPrompt",
           "SamplingParams"]
