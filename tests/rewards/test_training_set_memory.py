"""A split of a training set reads its parent's feature matrix through an item map instead of copying the rows it
keeps, and a torch head fitted through that map computes exactly what it computed on copied rows."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from rewardlab.rewards.torch_head import TorchHead
from rewardlab.rewards.training_set import TrainingSet


def _training_set(n_groups: int = 40, per_group: int = 4, dim: int = 12, seed: int = 0) -> TrainingSet:
    rng = np.random.default_rng(seed)
    n = n_groups * per_group
    x = rng.normal(size=(n, dim)).astype(np.float32)
    true_w = rng.normal(size=dim)
    group = np.repeat(np.arange(n_groups), per_group)
    pa, pb, target = [], [], []
    for g in range(n_groups):
        items = np.arange(g * per_group, (g + 1) * per_group)
        for i in range(per_group):
            for j in range(i + 1, per_group):
                a, b = items[i], items[j]
                pa.append(a)
                pb.append(b)
                target.append(float(x[a] @ true_w + rng.normal() > x[b] @ true_w))
    return TrainingSet(
        x=x, response_ids=[f"r{i:04d}" for i in range(n)], group=group,
        pair_a=np.array(pa), pair_b=np.array(pb), pair_target=np.array(target, dtype=np.float32),
        rating_item=np.zeros(0, np.int64), rating_value=np.zeros(0, np.float32),
        label_item=np.zeros(0, np.int64), label_value=np.zeros(0, np.float32),
        length=rng.integers(10, 400, size=n).astype(np.float64),
    )


def _copied(data: TrainingSet) -> TrainingSet:
    """``data`` with its rows copied into a matrix of its own (what a split held before it indexed its parent)."""
    copy = pickle.loads(pickle.dumps(data))
    assert copy.feature_source()[1] is None
    return copy


def test_split_indexes_the_parent_matrix_without_a_copy() -> None:
    data = _training_set()
    train, val = data.split_by_group(0.25, seed=1)
    for part in (train, val):
        matrix, rows = part.feature_source()
        assert matrix is data.x  # the parent's matrix itself
        assert rows is not None and len(rows) == part.n_items
        assert part.dim == data.dim
        np.testing.assert_array_equal(part.rows_of(np.arange(part.n_items)), data.x[rows])
    assert set(train.feature_source()[1]).isdisjoint(val.feature_source()[1])  # type: ignore[arg-type]


def test_x_still_reads_one_row_per_item() -> None:
    data = _training_set()
    train, _ = data.split_by_group(0.25, seed=1)
    keep = np.isin(data.response_ids, train.response_ids)
    np.testing.assert_array_equal(train.x, data.x[keep])
    assert train.x.shape == (train.n_items, data.dim)


def test_a_split_of_a_split_maps_to_the_original_rows() -> None:
    data = _training_set()
    train, _ = data.split_by_group(0.25, seed=1)
    inner, _ = train.split_by_group(0.5, seed=2)
    matrix, rows = inner.feature_source()
    assert matrix is data.x and rows is not None
    by_id = {rid: i for i, rid in enumerate(data.response_ids)}
    np.testing.assert_array_equal(rows, [by_id[rid] for rid in inner.response_ids])


def test_a_pickled_split_carries_only_its_own_rows() -> None:
    data = _training_set()
    _, val = data.split_by_group(0.25, seed=1)
    restored = pickle.loads(pickle.dumps(val))
    matrix, rows = restored.feature_source()
    assert rows is None and matrix.shape == (val.n_items, data.dim)
    np.testing.assert_array_equal(matrix, val.x)


@pytest.mark.parametrize("params", [{"hidden": 0}, {"hidden": 16}, {"hidden": 16, "length_debias": True}])
def test_torch_head_fits_the_same_through_the_item_map(params: dict[str, object]) -> None:
    """The early-stopping split inside ``fit`` reads rows through the map; fitting a split as given (mapped) and the
    same split with its rows copied must give bit-identical rewards."""
    data = _training_set()
    train, _ = data.split_by_group(0.2, seed=3)
    assert train.feature_source()[1] is not None
    mapped = TorchHead(objective="bt", seed=5, max_epochs=8, **params).fit(train)  # type: ignore[arg-type]
    copied = TorchHead(objective="bt", seed=5, max_epochs=8, **params).fit(_copied(train))  # type: ignore[arg-type]
    assert mapped.fit_log_["epochs"] == copied.fit_log_["epochs"]
    np.testing.assert_array_equal(mapped.predict(data.x), copied.predict(data.x))


def test_a_training_set_holds_exactly_its_fields() -> None:
    """``TrainingSet(**vars(data))`` rebuilds a training set (the item map lives only on splits)."""
    data = _training_set()
    assert set(vars(data)) == set(TrainingSet.__dataclass_fields__)
    rebuilt = TrainingSet(**vars(data))
    assert rebuilt.x is data.x and rebuilt.feature_source()[1] is None
