"""Length-debiased heads (reward = q + g(length), scored with q) and length-balanced pair weights."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import spearmanr

from cli_helpers import demo_lines, run
from rewardlab.errors import ModelError
from rewardlab.rewards.heads import make_head
from rewardlab.rewards.torch_head import TorchHead
from rewardlab.rewards.training_set import TrainingSet


def length_biased_problem(n_pairs: int, length_quality_corr: float, seed: int,
                          bias: float = 2.0) -> tuple[TrainingSet, np.ndarray]:
    """Pairs labelled by annotators who prefer quality *and* length (utility = quality + bias·z, z the standardised
    log-length). Features carry a noisy view of quality and one of length, as an embedding does; ``length_quality_corr``
    sets how quality and length go together. Returns the set and each response's true quality."""
    rng = np.random.default_rng(seed)
    n = 2 * n_pairs
    quality = rng.normal(size=n)
    z = length_quality_corr * quality + np.sqrt(1 - length_quality_corr**2) * rng.normal(size=n)
    x = rng.normal(size=(n, 16)).astype(np.float32)
    x[:, 0] = quality + 0.3 * rng.normal(size=n)
    x[:, 1] = z + 0.3 * rng.normal(size=n)
    a = np.arange(0, n, 2)
    b = a + 1
    utility = quality + bias * z
    p_a = 1 / (1 + np.exp(-3 * (utility[a] - utility[b])))
    items = np.arange(n)
    none = np.zeros(0, dtype=np.int64)
    data = TrainingSet(x=x, response_ids=[f"r{i}" for i in items], group=items // 2, pair_a=a, pair_b=b,
                       pair_target=(rng.random(n_pairs) < p_a).astype(np.float32), rating_item=none,
                       rating_value=np.zeros(0, np.float32), label_item=none, label_value=np.zeros(0, np.float32),
                       length=np.exp(5 + 0.8 * z))
    return data, quality


@pytest.fixture(scope="module")
def shifted_length() -> tuple[TrainingSet, TrainingSet, np.ndarray]:
    """Quality and length go together in training (ρ = .6) and against each other in the test (ρ = −.6)."""
    train, _ = length_biased_problem(2000, 0.6, seed=0)
    test, test_quality = length_biased_problem(800, -0.6, seed=1)
    return train, test, test_quality


@pytest.mark.parametrize("objective", ["bt", "clf"])
def test_plain_head_fails_and_debiased_head_recovers_quality_when_length_shifts(shifted_length, objective):
    train, test, quality = shifted_length
    plain = TorchHead(objective=objective, hidden=256).fit(train)
    debiased = TorchHead(objective=objective, hidden=256, length_debias=True, balance_length=True).fit(train)
    plain_rho = spearmanr(plain.predict(test.x), quality)[0]
    debiased_rho = spearmanr(debiased.predict(test.x), quality)[0]
    assert plain_rho < 0.3, f"plain {objective} should have learned length: Spearman with quality {plain_rho:.2f}"
    assert debiased_rho > 0.8, f"debiased {objective} Spearman with quality {debiased_rho:.2f}"
    assert debiased.fit_log["length_effect"][0] > 0  # g learned the annotators' "longer wins"


def test_length_debias_alone_recovers_quality_with_bradley_terry(shifted_length):
    train, test, quality = shifted_length
    head = TorchHead(objective="bt", hidden=256, length_debias=True).fit(train)
    assert spearmanr(head.predict(test.x), quality)[0] > 0.8


def test_length_balance_weights_make_longer_and_shorter_wins_weigh_the_same():
    # pairs: a longer & a wins (longer wins) ×3, a longer & b wins (shorter wins) ×1, a tie, equal lengths
    length = np.array([10, 5, 10, 5, 10, 5, 10, 5, 10, 5, 7, 7], dtype=float)
    target = np.array([1, 1, 1, 0, 0.5, 1], dtype=np.float32)
    data = TrainingSet(x=np.zeros((12, 2), np.float32), response_ids=[str(i) for i in range(12)],
                       group=np.arange(12) // 2, pair_a=np.arange(0, 12, 2), pair_b=np.arange(1, 12, 2),
                       pair_target=target, rating_item=np.zeros(0, np.int64), rating_value=np.zeros(0, np.float32),
                       label_item=np.zeros(0, np.int64), label_value=np.zeros(0, np.float32), length=length)
    weights = data.length_balance_weights()
    np.testing.assert_allclose(weights, [4 / 6, 4 / 6, 4 / 6, 2.0, 1.0, 1.0])
    assert weights[:3].sum() == pytest.approx(weights[3])


def test_length_options_need_comparisons_and_lengths(shifted_length):
    train, _, _ = shifted_length
    with pytest.raises(ModelError, match="comparisons"):
        TorchHead(objective="rating", length_debias=True).fit(train)
    no_lengths = TrainingSet(**{**vars(train), "length": np.zeros(0)})
    with pytest.raises(ModelError, match="length"):
        TorchHead(objective="bt", balance_length=True).fit(no_lengths)
    with pytest.raises(ModelError, match="bad parameters"):
        make_head("clf-lgbm", length_debias=True)


def test_debiased_head_saves_and_loads_with_its_length_effect(shifted_length, tmp_path: Path):
    train, test, _ = shifted_length
    head = TorchHead(objective="bt", hidden=0, length_debias=True, max_epochs=3).fit(train)
    head.save(tmp_path)
    loaded = TorchHead.load(tmp_path)
    np.testing.assert_allclose(loaded.predict(test.x), head.predict(test.x), rtol=1e-6)
    saved = json.loads((tmp_path / "head.json").read_text())
    assert saved["params"]["length_debias"] is True
    assert len(saved["fit_log"]["length_effect"]) == 2


def test_train_cli_takes_head_params(tmp_path: Path):
    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(demo_lines(60)), encoding="utf-8")
    code, output = run("train", str(data), "--out", str(tmp_path / "m"), "--encoder", "hashing", "--head", "bt-linear",
                       "--head-param", "length_debias=true", "--head-param", "balance_length=true", "--quiet",
                       "--cache-dir", str(tmp_path / "cache"))
    assert code == 0, output
    params = json.loads((tmp_path / "m" / "config.json").read_text())["head"]
    assert params["length_debias"] is True and params["balance_length"] is True
    code, output = run("train", str(data), "--out", str(tmp_path / "m2"), "--encoder", "hashing",
                       "--head-param", "length_debias", "--quiet")
    assert code != 0 and "NAME=VALUE" in output
    code, output = run("train", str(data), "--out", str(tmp_path / "m3"), "--encoder", "hashing",
                       "--head-param", "no_such=1", "--quiet")
    assert code != 0 and "no_such" in output
