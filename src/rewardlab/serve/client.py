"""A served reward model as a TRL reward function: ``GRPOTrainer(reward_funcs=RemoteRewardFunction(url))``.

It turns TRL's batch (standard or conversational) into the same (prompt text, response text) pairs as the
in-process `rewardlab.optimize.trl_rewards.RewardFunction` and posts them to the server's ``/score``, so a
trainer on one machine and the reward model on another get the rewards the in-process function would give.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rewardlab.errors import RewardlabError
from rewardlab.optimize.trl_rewards import check_prompt_format, completion_text, reward_prompt_text


class RemoteRewardError(RewardlabError):
    """The reward server could not be reached or refused the request."""


class RemoteRewardFunction:
    """TRL's reward-function signature over ``POST {url}/score``.

    ``max_items`` splits a big batch into requests the server takes (its ``max_items``); ``api_key`` is sent as a
    bearer token; ``model`` picks one of several served models.
    """

    def __init__(self, url: str, model: str | None = None, prompt_format: str = "hh", name: str = "proxy",
                 api_key: str | None = None, timeout: float = 120.0, max_items: int = 512) -> None:
        import httpx

        self.url = url.rstrip("/")
        self.model = model
        self.prompt_format = check_prompt_format(prompt_format)
        self.max_items = max_items
        self.__name__ = name
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def score_texts(self, prompts: Sequence[str], responses: Sequence[str]) -> list[float]:
        """Rewards of (prompt text, response text) pairs, as the server's ``/score`` gives them."""
        import httpx

        if len(prompts) != len(responses):
            raise RemoteRewardError(f"{len(prompts)} prompts but {len(responses)} responses to score")
        rewards: list[float] = []
        for start in range(0, len(prompts), self.max_items):
            items = [{"prompt": p, "response": r}
                     for p, r in zip(prompts[start:start + self.max_items], responses[start:start + self.max_items])]
            body: dict[str, Any] = {"items": items} if self.model is None else {"items": items, "model": self.model}
            try:
                reply = self.client.post("/score", json=body)
            except httpx.HTTPError as exc:
                raise RemoteRewardError(f"reward server {self.url}: {exc}") from exc
            if reply.status_code != 200:
                raise RemoteRewardError(f"reward server {self.url} answered {reply.status_code}: {reply.text[:300]}")
            rewards.extend(float(r) for r in reply.json()["rewards"])
        return rewards

    def __call__(self, prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any) -> list[float]:
        """TRL's reward-function signature; extra keyword arguments (dataset columns, trainer state) are ignored."""
        if len(prompts) != len(completions):
            raise RemoteRewardError(f"{len(prompts)} prompts but {len(completions)} completions to score")
        return self.score_texts([reward_prompt_text(p, self.prompt_format) for p in prompts],
                                [completion_text(c) for c in completions])

    def close(self) -> None:
        self.client.close()
