"""Trainers can use the service: a 2-step TRL GRPO run whose rewards come from the server through
`RemoteRewardFunction` gets, call for call, the rewards of the in-process `RewardFunction`; and a client posting
exactly what OpenRLHF's remote reward-model client posts gets them too."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest

from http_helpers import running
from rewardlab.optimize.trl_rewards import RewardFunction
from rewardlab.rewards.model import RewardModel
from rewardlab.serve.client import RemoteRewardError, RemoteRewardFunction
from rewardlab.serve.config import QuerySplit
from rewardlab.serve.reward_server import create_app
from rewardlab.serve.scoring import load_served_models

PROMPTS = ["Write a short poem about the sea", "What is the capital of France?", "hello there",
           "A reward model scores responses", "Numbers like 1 2 3", "The quick brown fox"]


class Recording:
    """A reward function that remembers what it returned (TRL reads ``__name__``)."""

    def __init__(self, function: Any) -> None:
        self.function, self.__name__ = function, function.__name__
        self.calls: list[tuple[list[Any], list[Any], list[float]]] = []

    def __call__(self, prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any) -> list[float]:
        rewards = self.function(prompts, completions, **kwargs)
        self.calls.append((list(prompts), list(completions), rewards))
        return list(rewards)


def test_grpo_gets_the_same_rewards_from_the_server(tiny_model: Path, model_dirs: dict[str, Path], tmp_path: Path) -> None:
    pytest.importorskip("trl")
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer

    from rewardlab.optimize.policy import PolicyRunConfig, _trl_config

    local = Recording(RewardFunction(RewardModel.load(model_dirs["polite"]), name="local"))
    with running(create_app(load_served_models([str(model_dirs["polite"])]))) as base:
        remote = Recording(RemoteRewardFunction(base, name="remote"))
        config = PolicyRunConfig(model=str(tiny_model), steps=2, batch_size=2, num_generations=2,
                                 max_completion_tokens=8, learning_rate=1e-3)
        # both functions score every batch; only the served one's rewards train the policy
        args = _trl_config(GRPOConfig, config, tmp_path, torch.device("cpu"), beta=0.0, num_generations=2,
                           per_device_train_batch_size=2, max_completion_length=8, reward_weights=[1.0, 0.0])
        tokenizer = AutoTokenizer.from_pretrained(tiny_model)
        tokenizer.padding_side = "left"
        trainer = GRPOTrainer(model=AutoModelForCausalLM.from_pretrained(tiny_model), reward_funcs=[remote, local],
                              args=args, train_dataset=Dataset.from_list([{"prompt": p} for p in PROMPTS]),
                              processing_class=tokenizer)
        trainer.train()
        remote.function.close()
    assert trainer.state.global_step == 2
    assert len(remote.calls) >= 2 and len(remote.calls) == len(local.calls)
    for (p_remote, c_remote, r_remote), (p_local, c_local, r_local) in zip(remote.calls, local.calls):
        assert (p_remote, c_remote) == (p_local, c_local)
        assert r_remote == r_local and len(r_remote) == len(c_remote)


def test_openrlhf_client_gets_the_in_process_rewards(model_dirs: dict[str, Path]) -> None:
    """OpenRLHF posts ``{"query", "prompts", "labels"}`` with only a Content-Type header and reads ``rewards``; with
    ``prompt_format="hh"`` the server scores what the in-process TRL `RewardFunction` scores."""
    reward = RewardFunction(RewardModel.load(model_dirs["polite"]))
    completions = [" thank you, here is a careful answer", " no", " Paris is the capital", " 1 2 3 4", "", " hi"]
    queries = [p + c + "</s>" for p, c in zip(PROMPTS, completions)]  # prompt + decoded sample + EOS
    expected = reward(PROMPTS, completions)
    served = load_served_models([str(model_dirs["polite"])])
    with running(create_app(served, split=QuerySplit(prompt_format="hh"))) as base:
        response = httpx.post(f"{base}/get_reward", json={"query": queries, "prompts": PROMPTS, "labels": [""] * 6},
                              headers={"Content-Type": "application/json"}, timeout=180)
        response.raise_for_status()
        assert response.json()["rewards"] == expected
        # the same through the TRL-side client, and its errors
        client = RemoteRewardFunction(base, max_items=4)
        assert client(PROMPTS, completions) == expected  # split into requests of 4
        with pytest.raises(RemoteRewardError, match="404"):
            RemoteRewardFunction(base, model="missing")(PROMPTS[:1], completions[:1])
    with pytest.raises(RemoteRewardError, match="reward server"):
        client(PROMPTS[:1], completions[:1])  # the server is gone
