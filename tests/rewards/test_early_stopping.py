"""Early stopping: a fit stops ``patience`` epochs after its best validation epoch and keeps that epoch's weights, so
a shorter patience only drops epochs after the best one: where no later epoch would have been better, the model is
the same (the measurement behind the default: benchmarks/patience_transfer.py)."""

from __future__ import annotations

import numpy as np

from rewardlab.rewards.torch_head import TorchHead
from rewardlab.rewards.torch_training import MLP_PATIENCE, TrainParams
from rewardlab.rewards.training_set import TrainingSet


def _noisy_pairs(n_groups: int = 60, per_group: int = 4, dim: int = 16, seed: int = 0) -> TrainingSet:
    """Pairs whose labels are mostly noise, so validation loss bottoms out in the first few epochs."""
    rng = np.random.default_rng(seed)
    n = n_groups * per_group
    x = rng.normal(size=(n, dim)).astype(np.float32)
    w = rng.normal(size=dim)
    pa, pb, target = [], [], []
    for g in range(n_groups):
        for i in range(per_group):
            for j in range(i + 1, per_group):
                a, b = g * per_group + i, g * per_group + j
                pa.append(a)
                pb.append(b)
                target.append(float(0.3 * (x[a] - x[b]) @ w + rng.normal(scale=2.0) > 0))
    return TrainingSet(
        x=x, response_ids=[f"r{i:04d}" for i in range(n)], group=np.repeat(np.arange(n_groups), per_group),
        pair_a=np.array(pa), pair_b=np.array(pb), pair_target=np.array(target, dtype=np.float32),
        rating_item=np.zeros(0, np.int64), rating_value=np.zeros(0, np.float32),
        label_item=np.zeros(0, np.int64), label_value=np.zeros(0, np.float32),
    )


def test_a_fit_stops_patience_epochs_after_its_best_epoch() -> None:
    data = _noisy_pairs()
    for patience in (1, 2, 5):
        log = TorchHead(objective="bt", hidden=32, seed=1, patience=patience).fit(data).fit_log_
        assert log["epochs"] < TrainParams.max_epochs
        assert log["epochs"] - log["best_epoch"] == patience


def test_a_shorter_patience_keeps_the_same_model_when_no_later_epoch_is_better() -> None:
    data = _noisy_pairs()
    x = data.x
    compared = 0
    for seed in range(4):
        short = TorchHead(objective="bt", hidden=32, seed=seed, patience=2).fit(data)
        long = TorchHead(objective="bt", hidden=32, seed=seed, patience=5).fit(data)
        if long.fit_log_["best_epoch"] == short.fit_log_["best_epoch"]:  # no better epoch came later
            np.testing.assert_array_equal(short.predict(x), long.predict(x))
            compared += 1
        else:  # a later epoch was better: the longer patience found it
            assert long.fit_log_["best_epoch"] > short.fit_log_["best_epoch"] + 2
            assert long.fit_log_["best_val_loss"] < short.fit_log_["best_val_loss"]
    assert compared  # the noisy set makes the common case happen


def test_the_default_patience_is_the_measured_one() -> None:
    assert TorchHead().effective_patience() == MLP_PATIENCE == 2
    assert TorchHead(hidden=0).effective_patience() == TrainParams.patience == 5
    assert TorchHead(hidden=0, patience=3).effective_patience() == 3


def test_the_fit_log_records_the_patience_used() -> None:
    head = TorchHead(objective="bt", hidden=8, max_epochs=2).fit(_noisy_pairs(n_groups=12))
    assert head.patience is None and head.fit_log_["patience"] == MLP_PATIENCE
