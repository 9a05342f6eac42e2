"""Synthetic reward problems with a known reward, and small text preference datasets, for tests."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rewardlab.data import Comparison, FeedbackDataset, Rating
from rewardlab.rewards.training_set import TrainingSet


def synthetic_problem(
    n_prompts: int = 1500, dim: int = 8, beta: float = 20.0, seed: int = 0, nonlinear: bool = False
) -> tuple[TrainingSet, np.ndarray]:
    """A Bradley-Terry problem with a known reward: two responses per prompt, P(a wins) = σ(β·Δr*).

    Also carries ratings (r* + noise) and correctness labels (Bernoulli σ(β·r*)) for pointwise heads, and response
    lengths unrelated to the reward.
    Returns the training set and the true reward of every item.
    """
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(2 * n_prompts, dim)).astype(np.float32)
    w = rng.normal(size=dim)
    true = x @ w / np.linalg.norm(w)
    if nonlinear:
        true = true + 0.5 * np.tanh(x[:, 0] * x[:, 1])
    a = np.arange(0, 2 * n_prompts, 2)
    b = a + 1
    p_a = 1 / (1 + np.exp(-beta * (true[a] - true[b])))
    target = (rng.random(n_prompts) < p_a).astype(np.float32)
    items = np.arange(2 * n_prompts)
    data = TrainingSet(
        x=x,
        response_ids=[f"r{i}" for i in items],
        group=items // 2,
        pair_a=a,
        pair_b=b,
        pair_target=target,
        rating_item=items,
        rating_value=(true + rng.normal(scale=0.1, size=len(items))).astype(np.float32),
        label_item=items,
        label_value=(rng.random(len(items)) < 1 / (1 + np.exp(-beta * true))).astype(np.float32),
        # lengths independent of the reward (their own generator, so the draws above stay as they were): a
        # length-debiased head must learn the same reward here
        length=np.random.default_rng(seed + 1).integers(20, 2000, size=len(items)).astype(np.float64),
    )
    return data, true


def order_agreement(predicted: np.ndarray, true: np.ndarray, seed: int = 1, n_pairs: int = 5000) -> float:
    """Fraction of random item pairs that the predicted reward orders like the true reward."""
    rng = np.random.default_rng(seed)
    i, j = rng.integers(0, len(true), size=(2, n_pairs))
    keep = i != j
    return float((np.sign(predicted[i] - predicted[j]) == np.sign(true[i] - true[j]))[keep].mean())


def preference_dataset(name: str, rows: list[tuple[str, str, str]]) -> FeedbackDataset:
    """A dataset of (prompt, better, worse) comparisons; every other pair lists the winner second."""
    ds = FeedbackDataset(name)
    for i, (prompt, better, worse) in enumerate(rows):
        pid = ds.add_prompt(prompt)
        good = ds.add_response(pid, better)
        bad = ds.add_response(pid, worse)
        ds.add(Comparison(pid, good, bad, "a") if i % 2 else Comparison(pid, bad, good, "b"))
    return ds


GOOD_WORDS = ["clear", "kind", "careful", "honest", "useful"]
BAD_WORDS = ["rude", "vague", "wrong", "sloppy", "harmful"]


def worded_preferences(name: str, n: int) -> FeedbackDataset:
    """``n`` prompts on four topics, each with a two-good-word answer beating a one-bad-word one (seeded: the same
    rows every call), for tests that compare two ways of fitting the same data."""
    rng = random.Random(0)
    rows = []
    for i in range(n):
        topic = f"question {i} about {rng.choice(['cats', 'taxes', 'rivers', 'chess'])}"
        rows.append((topic, f"a {rng.choice(GOOD_WORDS)} and {rng.choice(GOOD_WORDS)} answer",
                     f"a {rng.choice(BAD_WORDS)} answer"))
    return preference_dataset(name, rows)


def objective_labelled(n: int) -> FeedbackDataset:
    """``n`` questions, each with a grounded answer beating an invented one, and a 0/1 rating of each on one named
    objective (relevance for the good answer, factuality for the bad): what a multi-objective head learns from."""
    data = FeedbackDataset("objectives")
    for q in range(n):
        pid = data.add_prompt(f"question {q} about topic {q % 5}")
        good, bad = (data.add_response(pid, f"{word} answer {q}") for word in ("grounded", "invented"))
        data.add(Comparison(pid, good, bad, "a"))
        data.add(Rating(good, 1.0, (0.0, 1.0), meta={"objective": "relevance"}))
        data.add(Rating(bad, 0.0, (0.0, 1.0), meta={"objective": "factuality"}))
    return data


RECIPE_GOOD = ["clear and correct answer with the steps shown", "a helpful, accurate reply", "correct, careful and kind"]
RECIPE_BAD = ["wrong", "an unhelpful rude reply that rambles on and on about nothing in particular at all",
              "no idea, sorry"]


def tiny_recipe_study(root: Path, monkeypatch: pytest.MonkeyPatch, recipes: tuple[str, ...]) -> dict[str, Any]:
    """The recipe study's smallest run: two synthetic sets of 16 pairs written under ``root``, ``recipes`` cut to 5
    epochs (for this test only), two heads, the hashing encoder."""
    from dataclasses import replace

    from rewardlab.data.parquet import write_parquet
    from rewardlab.studies import rm_recipes

    for name in recipes:
        recipe = rm_recipes.RECIPES[name]
        monkeypatch.setitem(rm_recipes.RECIPES, name, replace(recipe, head_params={**recipe.head_params, "max_epochs": 5}))
    sets = []
    for topic in ("cooking", "travel"):
        rows = [(f"{topic} question {i}?", f"{RECIPE_GOOD[i % 3]} about {topic} {i}", f"{RECIPE_BAD[i % 3]} {i}")
                for i in range(16)]
        sets.append(str(write_parquet(preference_dataset(topic, rows), root / topic)))
    return {"sets": tuple(sets), "recipes": recipes, "heads": ("bt-linear", "bt-mlp"), "encoder": "hashing:64",
            "probe": "", "n_resamples": 50, "speed_probe": (), "cache_dir": str(root / "cache")}
