"""What makes the cached quickstart faster changes none of its numbers: a fold's data hashed once, the final model
fitted beside the fold workers, and workers forked from a preloaded forkserver."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch

from rewardlab.embed import make_encoder
from rewardlab.evaluate import LearnerSpec, cross_validate
from rewardlab.evaluate.fold_workers import FoldJob, fold_training_set, job_model_args
from rewardlab.evaluate.quickstart import QuickstartConfig, run_quickstart
from synthetic import preference_dataset

GOOD = ["clear", "kind", "careful", "honest", "useful"]
BAD = ["rude", "vague", "wrong", "sloppy", "harmful"]


def _dataset(n: int = 60):
    rng = random.Random(3)
    rows = [(f"question {i} about {rng.choice(['cats', 'taxes', 'rivers'])}",
             f"a {rng.choice(GOOD)} answer", f"a {rng.choice(BAD)} answer") for i in range(n)]
    return preference_dataset("speedups", rows)


def test_a_folds_training_set_is_hashed_once_and_to_the_same_fingerprint() -> None:
    dataset = _dataset()
    fold_of = dataset.fold_of_prompt(3, seed=0)
    empty = np.zeros((0, 1))
    model_args = job_model_args("interaction", 0, None, None, "none")
    job = FoldJob(dataset, fold_of, {}, empty, empty, np.zeros(0), "hashing:8", "", model_args)
    train = fold_training_set(job, 1)
    fresh = dataset.subset({pid for pid, fold in fold_of.items() if fold != 1})
    assert train.fingerprint() == fresh.fingerprint() == train.fingerprint()
    assert train.fingerprint.cache_info().misses == 1  # type: ignore[attr-defined]
    assert type(fresh).fingerprint is type(train).fingerprint  # the class's method is untouched


@pytest.mark.parametrize("workers", [1, 2])
def test_work_alongside_runs_once_and_beside_workers_on_one_thread(tmp_path: Path, workers: int) -> None:
    calls: list[int] = []
    threads = torch.get_num_threads()
    result = cross_validate(_dataset(), [LearnerSpec("linear", "bt-linear")], make_encoder("hashing:32"), k=2,
                            cache_dir=tmp_path, n_resamples=20, workers=workers,
                            alongside=lambda: calls.append(torch.get_num_threads()))
    assert calls == [1 if workers > 1 else threads]
    assert torch.get_num_threads() == threads  # put back
    assert np.isfinite(result.scores["linear"][0]).all()


def test_the_quickstart_gives_the_same_record_and_final_model_with_workers_as_in_one_process(tmp_path: Path) -> None:
    outcomes = []
    for workers in (1, 2):
        config = QuickstartConfig(encoder="hashing:32", folds=2, limit=120, runs=tmp_path / f"runs-{workers}",
                                  cache_dir=tmp_path / "cache", workers=workers)
        outcomes.append(run_quickstart(config))
    one, many = outcomes
    for spec in one.crossval.learners:
        for side in (0, 1):
            np.testing.assert_array_equal(one.crossval.scores[spec.name][side], many.crossval.scores[spec.name][side])
    weights = [sorted(p.relative_to(r.model_dir) for p in r.model_dir.rglob("*.safetensors")) for r in outcomes]
    assert weights[0] == weights[1] and weights[0]
    for relative in weights[0]:
        assert (one.model_dir / relative).read_bytes() == (many.model_dir / relative).read_bytes()
    assert one.crossval.metrics == many.crossval.metrics
    assert one.timings["final_model"] > 0 and many.timings["final_model"] > 0
