"""Splits are by prompt: no prompt, and no two prompts equal up to case/punctuation/spacing, on both sides."""

from __future__ import annotations

from collections import Counter

import pytest

from rewardlab.data import Comparison, FeedbackDataset, Label, Rating
from rewardlab.data.types import normalize_prompt

NEAR_DUPLICATES = ("Hello, World!", "hello world", "  HELLO   world?? ")


def toy() -> FeedbackDataset:
    """30 distinct prompts plus three spellings of one prompt, each with comparisons, ratings and labels."""
    ds = FeedbackDataset("toy")
    texts = [f"Question number {i}: what is {i} squared?" for i in range(30)] + list(NEAR_DUPLICATES)
    n = 0
    for i, text in enumerate(texts):
        pid = ds.add_prompt(text)
        rids = [ds.add_response(pid, f"answer {j} to {text}") for j in range(3)]
        for a, b in ((0, 1), (1, 2)):
            n += 1
            ds.add(Comparison(pid, rids[a], rids[b], "a" if i % 2 else "b", meta={"n": n}))
        ds.add(Rating(rids[0], float(i)))
        ds.add(Label(rids[1], i % 3 == 0))
    return ds


def _comparison_ids(ds: FeedbackDataset) -> Counter[int]:
    return Counter(c.meta["n"] for c in ds.comparisons)


def _groups(ds: FeedbackDataset) -> set[str]:
    return {normalize_prompt(p.text) for p in ds.prompts.values()}


def _check_disjoint(full: FeedbackDataset, train: FeedbackDataset, test: FeedbackDataset) -> None:
    assert train.prompts and test.prompts
    assert not set(train.prompts) & set(test.prompts)
    assert not _groups(train) & _groups(test)
    assert set(train.prompts) | set(test.prompts) == set(full.prompts)
    for part in (train, test):
        for name in ("comparisons", "ratings", "labels"):
            assert all(part.prompt_of(row) in part.prompts for row in part.table(name))
        assert all(r.prompt_id in part.prompts for r in part.responses.values())
    assert _comparison_ids(train) + _comparison_ids(test) == _comparison_ids(full)
    assert len(train.ratings) + len(test.ratings) == len(full.ratings)
    assert len(train.labels) + len(test.labels) == len(full.labels)
    assert len(train.responses) + len(test.responses) == len(full.responses)


def test_normalize_prompt_makes_the_spellings_equal() -> None:
    assert len({normalize_prompt(t) for t in NEAR_DUPLICATES}) == 1
    assert normalize_prompt("Hello, World!") == "hello world"
    ds = toy()
    assert len(ds.prompts) == 33
    assert len(ds.duplicate_prompts()) == 1
    assert len(ds.duplicate_prompts()[0]) == 3


@pytest.mark.parametrize("seed", range(25))
def test_split_by_prompt_keeps_duplicates_together(seed: int) -> None:
    ds = toy()
    train, test = ds.split(by="prompt", test_size=0.25, seed=seed)
    _check_disjoint(ds, train, test)
    # 31 distinct prompt groups, a quarter of them in test
    assert len(_groups(test)) == round(0.25 * 31)
    hello_sides = {("train" if pid in train.prompts else "test") for pid in ds.duplicate_prompts()[0]}
    assert len(hello_sides) == 1


def test_split_is_deterministic_given_seed() -> None:
    ds = toy()
    first = ds.split(seed=7)
    second = toy().split(seed=7)
    assert set(first[1].prompts) == set(second[1].prompts)
    assert set(first[0].prompts) == set(second[0].prompts)
    tests = {frozenset(ds.split(seed=s)[1].prompts) for s in range(10)}
    assert len(tests) > 1  # the seed matters


@pytest.mark.parametrize("by", ["response", "comparison", "row", "random", "Prompt"])
def test_split_by_anything_else_raises(by: str) -> None:
    with pytest.raises(ValueError, match="only by='prompt'"):
        toy().split(by=by)


@pytest.mark.parametrize("test_size", [0.0, 1.0, -0.1, 1.5])
def test_split_rejects_bad_test_size(test_size: float) -> None:
    with pytest.raises(ValueError, match="test_size"):
        toy().split(test_size=test_size)


def test_split_needs_two_distinct_prompts() -> None:
    ds = FeedbackDataset("one")
    for text in NEAR_DUPLICATES:
        ds.add_prompt(text)
    with pytest.raises(ValueError, match="two distinct prompts"):
        ds.split()


@pytest.mark.parametrize("k", [2, 3, 5, 10])
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_kfold_partitions_comparisons_and_keeps_duplicates_together(k: int, seed: int) -> None:
    ds = toy()
    folds = ds.kfold(k, seed=seed)
    assert len(folds) == k
    test_union: Counter[int] = Counter()
    seen_groups: set[str] = set()
    for train, test in folds:
        _check_disjoint(ds, train, test)
        test_union += _comparison_ids(test)
        assert not _groups(test) & seen_groups  # every prompt group is tested exactly once
        seen_groups |= _groups(test)
    assert test_union == _comparison_ids(ds)
    assert seen_groups == _groups(ds)
    # 31 groups over k folds: fold sizes (in groups) differ by at most one
    sizes = [len(_groups(test)) for _, test in folds]
    assert max(sizes) - min(sizes) <= 1


def test_kfold_is_deterministic_and_validates_k() -> None:
    ds = toy()
    assert [set(t.prompts) for _, t in ds.kfold(4, seed=3)] == [set(t.prompts) for _, t in toy().kfold(4, seed=3)]
    with pytest.raises(ValueError, match="k >= 2"):
        ds.kfold(1)
    with pytest.raises(ValueError, match="cannot make 32 folds from 31 distinct prompts"):
        ds.kfold(32)
    assert len(ds.kfold(31)) == 31


def test_real_hh_duplicate_prompts_stay_on_one_side(hh_dataset: FeedbackDataset) -> None:
    duplicates = hh_dataset.duplicate_prompts()
    assert duplicates, "the HH harmless test split has prompts that differ only in case/punctuation"
    for seed in range(3):
        train, test = hh_dataset.split(test_size=0.3, seed=seed)
        assert not set(train.prompts) & set(test.prompts)
        assert not _groups(train) & _groups(test)
        assert len(train.comparisons) + len(test.comparisons) == len(hh_dataset.comparisons)
        for group in duplicates:
            assert len({pid in test.prompts for pid in group}) == 1
    folds = hh_dataset.kfold(5, seed=0)
    rows: Counter[int] = Counter()
    for train, test in folds:
        assert not _groups(train) & _groups(test)
        for group in duplicates:
            assert len({pid in test.prompts for pid in group}) == 1
            assert all(pid in train.prompts or pid in test.prompts for pid in group)
        rows += Counter(c.meta["row"] for c in test.comparisons)
    assert rows == Counter(c.meta["row"] for c in hh_dataset.comparisons)
