"""`RewardFunction` on both TRL formats and the HH prompt conversion; `label_on_policy_pairs` best vs worst."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from rewardlab.optimize.policy_eval import PolicySampler
from rewardlab.optimize.trl_rewards import (
    PolicyError,
    RewardFunction,
    as_messages,
    label_on_policy_pairs,
    reward_prompt_text,
)
from rewardlab.rewards.model import RewardModel
from synthetic import preference_dataset

DIALOGUE = [{"role": "user", "content": "How do I bake bread?"}, {"role": "assistant", "content": "With flour."},
            {"role": "user", "content": "And then?"}]
HH_TEXT = "\n\nHuman: How do I bake bread?\n\nAssistant: With flour.\n\nHuman: And then?"


@pytest.fixture(scope="module")
def reward_model() -> RewardModel:
    """Rewards polite, long answers (a hashing encoder: trains in milliseconds)."""
    rows = [(f"question {i}", f"thank you, here is a careful answer number {i} about bread", "no")
            for i in range(30)]
    return RewardModel.create("bt-linear", encoder="hashing:64").fit(preference_dataset("polite", rows))


def test_hh_prompt_text_from_every_form() -> None:
    assert reward_prompt_text(DIALOGUE) == HH_TEXT
    assert reward_prompt_text(HH_TEXT) == HH_TEXT
    assert reward_prompt_text(HH_TEXT + "\n\nAssistant:") == HH_TEXT  # a prompt ready for the assistant's turn
    assert reward_prompt_text("Plain question?") == "\n\nHuman: Plain question?"
    assert reward_prompt_text([{"role": "system", "content": "Be kind."}, *DIALOGUE]) == HH_TEXT  # HH has no system turn
    assert reward_prompt_text(DIALOGUE, "last-user") == "And then?"
    assert reward_prompt_text("Plain question?", "last-user") == "Plain question?"
    assert as_messages(HH_TEXT) == DIALOGUE


def test_standard_and_conversational_formats_give_the_same_rewards(reward_model: RewardModel) -> None:
    reward = RewardFunction(reward_model)
    responses = ["thank you, here is a careful answer", "no"]
    standard = reward([HH_TEXT, "Plain question?"], responses)
    conversational = reward([DIALOGUE, [{"role": "user", "content": "Plain question?"}]],
                            [[{"role": "assistant", "content": r}] for r in responses])
    assert standard == conversational
    expected = reward_model.score([HH_TEXT, "\n\nHuman: Plain question?"], responses)
    assert np.allclose(standard, expected)
    assert all(isinstance(r, float) for r in standard) and standard[0] > standard[1]
    # TRL passes dataset columns and trainer state as keyword arguments
    assert reward([HH_TEXT], responses[:1], completion_ids=[[1, 2]], trainer_state=None) == standard[:1]


def test_last_user_format_scores_the_last_message(reward_model: RewardModel) -> None:
    reward = RewardFunction(reward_model, prompt_format="last-user", name="polite")
    assert reward.__name__ == "polite"
    assert reward([DIALOGUE], ["thank you"]) == [float(reward_model.score(["And then?"], ["thank you"])[0])]


def test_bad_input_is_a_clear_error(reward_model: RewardModel) -> None:
    with pytest.raises(PolicyError, match="unknown prompt format"):
        RewardFunction(reward_model, prompt_format="chatml")
    with pytest.raises(PolicyError, match="2 prompts but 1 responses"):
        RewardFunction(reward_model)(["a", "b"], ["x"])
    with pytest.raises(PolicyError, match="needs a user message"):
        reward_prompt_text([{"role": "system", "content": "hi"}], "last-user")


class FixedGenerator:
    """Returns preset samples per prompt, so the pairing logic is checked exactly."""

    id = "fixed"

    def __init__(self, samples: dict[str, list[str]]) -> None:
        self.samples = samples
        self.calls: list[tuple[int, int | None]] = []

    def generate(self, prompts: Sequence[object], n: int = 1, temperature: float = 1.0, top_p: float = 1.0,
                 max_new_tokens: int = 128, seed: int | None = 0) -> list[list[str]]:
        self.calls.append((len(prompts), seed))
        return [self.samples[str(p)][:n] for p in prompts]


def test_pairs_are_best_against_worst_and_skips_are_counted(reward_model: RewardModel) -> None:
    good, bad = "thank you, here is a careful answer about bread", "no"
    generator = FixedGenerator({"a": [bad, good, "thank you"], "b": [good, good, good], "c": ["no", bad, bad]})
    pairs = label_on_policy_pairs(generator, reward_model, ["a", "b", "c"], n=3, batch_size=2)
    assert pairs.skipped == 2  # b: three identical texts; c: the same text, so no preference
    assert [(r["prompt"], r["chosen"], r["rejected"]) for r in pairs.rows] == [("a", good, bad)]
    assert pairs.rows[0]["chosen_reward"] > pairs.rows[0]["rejected_reward"]
    assert generator.calls == [(2, 0), (1, 2)]  # batches of prompts, each with its own seed
    strict = label_on_policy_pairs(FixedGenerator(generator.samples), reward_model, ["a"], n=3, min_margin=1e6)
    assert strict.rows == [] and strict.skipped == 1


def test_pairs_from_a_real_policy(tiny_model: Path, reward_model: RewardModel) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    sampler = PolicySampler(AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32),
                            AutoTokenizer.from_pretrained(tiny_model))
    prompts = ["hello there", [{"role": "user", "content": "What is the capital of France?"}], "Write a poem"]
    pairs = label_on_policy_pairs(sampler, RewardFunction(reward_model), prompts, n=4, max_new_tokens=6, seed=3)
    assert len(pairs.rows) + pairs.skipped == 3
    for row in pairs.rows:
        assert row["chosen_reward"] >= row["rejected_reward"] and row["chosen"] != row["rejected"]
        assert set(row) == {"prompt", "chosen", "rejected", "chosen_reward", "rejected_reward"}
    again = label_on_policy_pairs(sampler, RewardFunction(reward_model), prompts, n=4, max_new_tokens=6, seed=3)
    assert again == pairs  # seeded


def test_pairs_need_two_samples(reward_model: RewardModel) -> None:
    with pytest.raises(PolicyError, match="at least 2 samples"):
        label_on_policy_pairs(FixedGenerator({}), reward_model, ["a"], n=1)
