"""A training set built from `FeatureRows` holds no feature matrix: its rows are made when asked for, from the distinct
texts' vectors. Every head must fit exactly what it fitted on the full matrix (the same bytes), whether it reads rows a
batch at a time (`TrainingSet.rows_of`) or the whole matrix (``x``, `TrainingSet.feature_source`)."""

from __future__ import annotations

import hashlib
import pickle

import numpy as np
import pytest

from rewardlab.data import FeedbackDataset
from rewardlab.embed import make_encoder
from rewardlab.rewards import RewardModel
from rewardlab.rewards.features import feature_rows_on_demand, featurize_dataset
from rewardlab.rewards.training_set import OnDemandFeatures, TrainingSet, build_training_set
from synthetic import preference_dataset

ENCODER = "hashing:64"


def _dataset(n: int = 90) -> FeedbackDataset:
    """Comparisons whose winner says "glad"; prompts repeat, so the distinct texts are fewer than the rows."""
    rows = [(f"Question {i % 30}: help with step {i % 7}?", f"Glad to help with part {i}, here it is.",
             f"Part {i}: no, not now.") for i in range(n)]
    return preference_dataset("on-demand", rows)


def _both(dataset: FeedbackDataset, mode: str = "interaction") -> tuple[TrainingSet, TrainingSet]:
    """(training set on the full matrix, the same on rows made on demand)."""
    encoder = make_encoder(ENCODER)
    full, _ = featurize_dataset(dataset, encoder, mode)
    lazy, _ = feature_rows_on_demand(dataset, encoder, mode)
    return build_training_set(dataset, full), build_training_set(dataset, lazy)


def _weights_digest(model: RewardModel) -> str:
    digest = hashlib.sha256()
    for member in getattr(model.head, "members_", [model.head]):
        for name, value in sorted(member.net_.state_dict().items()):
            digest.update(name.encode() + value.numpy().tobytes())
    return digest.hexdigest()


@pytest.mark.parametrize("mode", ["response", "prompt+response", "interaction"])
def test_rows_made_on_demand_are_the_matrix_rows(mode: str) -> None:
    full, lazy = _both(_dataset(), mode)
    assert isinstance(lazy.__dict__["_feature_source"][0], OnDemandFeatures)
    assert lazy.dim == full.dim and lazy.n_items == full.n_items and lazy.response_ids == full.response_ids
    items = np.array([5, 0, 5, full.n_items - 1])
    np.testing.assert_array_equal(lazy.rows_of(items), full.x[items])
    assert "_feature_source" in lazy.__dict__  # rows_of and dim built no matrix
    for part_full, part_lazy in zip(full.split_by_group(0.3, seed=2), lazy.split_by_group(0.3, seed=2)):
        assert part_lazy.response_ids == part_full.response_ids
        np.testing.assert_array_equal(part_lazy.rows_of(np.arange(part_lazy.n_items)), part_full.x)
        np.testing.assert_array_equal(part_lazy.x, part_full.x)
    np.testing.assert_array_equal(lazy.x, full.x)


def test_the_whole_matrix_is_built_once_for_a_set_and_its_splits() -> None:
    full, lazy = _both(_dataset())
    train, val = lazy.split_by_group(0.3, seed=1)
    matrix, rows = train.feature_source()
    assert rows is not None and val.feature_source()[0] is matrix and lazy.feature_source()[0] is matrix
    np.testing.assert_array_equal(matrix, full.x)
    assert lazy.x is matrix


def test_a_pickled_set_with_rows_on_demand_carries_its_rows() -> None:
    full, lazy = _both(_dataset())
    restored = pickle.loads(pickle.dumps(lazy))
    assert restored.feature_source()[1] is None
    np.testing.assert_array_equal(restored.x, full.x)
    _, val = lazy.split_by_group(0.3, seed=1)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(val)).x, val.x)


@pytest.mark.parametrize("kind,ensemble", [("bt-linear", 0), ("bt-mlp", 0), ("clf-mlp", 0), ("bt-mlp-debiased", 0),
                                           ("bt-linear", 3), ("clf-lgbm", 0)])
def test_fit_on_rows_on_demand_gives_the_same_model(kind: str, ensemble: int) -> None:
    """`RewardModel.fit` without feature rows makes them on demand; given the full matrix's rows (the path every fit
    took before), it must fit the same weights, byte for byte."""
    dataset = _dataset()
    encoder = make_encoder(ENCODER)
    full_rows, _ = featurize_dataset(dataset, encoder, "interaction")
    on_demand = RewardModel.create(kind, encoder=ENCODER, seed=3, ensemble=ensemble).fit(dataset)
    on_matrix = RewardModel.create(kind, encoder=ENCODER, seed=3, ensemble=ensemble).fit(dataset, feature_rows=full_rows)
    x = np.stack([full_rows[rid] for rid in sorted(full_rows)])
    np.testing.assert_array_equal(on_demand.predict_members(x), on_matrix.predict_members(x))
    if kind != "clf-lgbm":
        assert _weights_digest(on_demand) == _weights_digest(on_matrix)


def test_a_torch_head_reads_batches_without_building_the_matrix(monkeypatch: pytest.MonkeyPatch) -> None:
    """bt-linear on rows made on demand never builds the (responses × width) matrix: that is the memory it saves."""
    built: list[int] = []
    original = OnDemandFeatures.matrix

    def matrix(self: OnDemandFeatures) -> np.ndarray:
        built.append(self.n_rows)
        return original(self)

    monkeypatch.setattr(OnDemandFeatures, "matrix", matrix)
    RewardModel.create("bt-linear", encoder=ENCODER, seed=0).fit(_dataset())
    assert not built, "a torch head built the whole feature matrix instead of reading batches through rows_of"
