"""Settings of `rewardlab serve` (the reward-model service): limits, micro-batching, cache, how a query is split.

Plain dataclasses with no web imports, so the CLI can take its option defaults from here without loading FastAPI.
"""

from __future__ import annotations

from dataclasses import dataclass

from rewardlab.errors import InvalidValueError

#: end-of-sequence markers a trainer's decoded text may end with; /get_reward strips them from the response
DEFAULT_STRIP = ("<|im_end|>", "<|endoftext|>", "<|eot_id|>", "</s>")


@dataclass(frozen=True)
class ServeConfig:
    """What one request may ask of the reward service, and how the service batches and caches.

    - ``max_items``: most (prompt, response) pairs one request scores (a /compare item is two);
    - ``max_text_chars``: longest prompt, response or query, in characters;
    - ``request_timeout``: seconds from a request's arrival (reading its body and waiting for the batch included);
      past them it is answered 504;
    - ``max_wait_ms``: how long the first request of a micro-batch waits for others to join it;
    - ``max_batch``: most pairs in one micro-batch (a bigger request is one batch on its own);
    - ``max_queue``: most pairs waiting for the model; past them a request is answered 503 at once;
    - ``cache_size``: feature rows of (prompt, response) pairs kept in memory per model (0: none);
    - ``api_key=None`` serves without one (the server binds 127.0.0.1 by default).
    """

    api_key: str | None = None
    max_body_bytes: int = 2 * 1024 * 1024
    max_items: int = 512
    max_text_chars: int = 32_000
    request_timeout: float = 60.0
    max_wait_ms: float = 5.0
    max_batch: int = 256
    max_queue: int = 16_384
    cache_size: int = 20_000

    def __post_init__(self) -> None:
        for name in ("max_body_bytes", "max_items", "max_text_chars", "max_batch", "max_queue"):
            if getattr(self, name) < 1:
                raise InvalidValueError(f"{name} must be at least 1, not {getattr(self, name)}")
        if self.cache_size < 0:
            raise InvalidValueError(f"cache_size must be >= 0, not {self.cache_size}")
        if not self.request_timeout > 0:
            raise InvalidValueError(f"request_timeout must be > 0 seconds, not {self.request_timeout}")
        if not 0 <= self.max_wait_ms <= 1000:
            raise InvalidValueError(f"max_wait_ms must be between 0 and 1000, not {self.max_wait_ms}")


@dataclass(frozen=True)
class QuerySplit:
    """How /get_reward cuts OpenRLHF's full ``query`` text (prompt and response, chat template applied) in two.

    1. When the request carries ``prompts`` and ``query[i]`` starts with ``prompts[i]``, the prompt is that prefix and
       the response is the rest (what OpenRLHF sends: the prompt it generated from, then the sample).
    2. Else, with a ``separator`` (e.g. ``"<|im_start|>assistant\\n"``), the text is cut at its LAST occurrence: the
       prompt is everything before it, the response everything after (the separator belongs to neither).
    3. Else the request is answered 400: a reward model scores a response to a prompt, and guessing the cut would
       score the wrong text.

    The response then loses any of the ``strip`` markers at its end (repeatedly, with the whitespace before them),
    so an end-of-sequence token a trainer decodes does not change the reward; a response ending in none is kept as
    sent. ``prompt_strip`` does the same at the end of the prompt.

    ``prompt_format`` (``"hh"`` or ``"last-user"``) turns the prompt into the text the TRL bridge
    (`rewardlab.optimize.trl_rewards.RewardFunction`) scores with the same setting, so OpenRLHF and a TRL run get the
    same rewards; ``None`` scores the prompt exactly as cut (chat-template markup included).
    """

    separator: str | None = None
    strip: tuple[str, ...] = DEFAULT_STRIP
    prompt_strip: tuple[str, ...] = ()
    prompt_format: str | None = None

    def __post_init__(self) -> None:
        if self.separator == "":
            raise InvalidValueError("the query separator must not be empty (leave it unset to require prompts)")
        from rewardlab.optimize.trl_rewards import PROMPT_FORMATS  # the TRL bridge's formats; imported when checked

        if self.prompt_format is not None and self.prompt_format not in PROMPT_FORMATS:
            raise InvalidValueError(f"unknown prompt format {self.prompt_format!r}; choose from {', '.join(PROMPT_FORMATS)}")
