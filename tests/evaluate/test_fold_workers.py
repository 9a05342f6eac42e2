"""Cross-validation fits in worker processes give exactly the in-process scores."""

from __future__ import annotations

import numpy as np
import pytest

from rewardlab.embed import HashingEncoder, make_encoder
from rewardlab.errors import ModelError
from rewardlab.evaluate import LearnerSpec, cross_validate
from rewardlab.evaluate.fold_workers import rebuilds_from_spec, resolve_workers
from synthetic import worded_preferences


def _dataset(n: int = 80):
    return worded_preferences("workers", n)


def test_two_workers_give_the_in_process_scores_for_every_kind_of_learner(tmp_path) -> None:
    dataset = _dataset()
    encoder = make_encoder("hashing:64")
    learners = [LearnerSpec("linear", "bt-linear"), LearnerSpec("mlp", "bt-mlp"),
                LearnerSpec("trees", "clf-lgbm", params={"n_estimators": 20}),
                LearnerSpec("ensemble", "bt-mlp", ensemble=2)]
    serial = cross_validate(dataset, learners, encoder, k=3, seed=1, cache_dir=tmp_path, n_resamples=50, workers=1)
    progress: list[tuple[int, int]] = []
    parallel = cross_validate(dataset, learners, encoder, k=3, seed=1, cache_dir=tmp_path, n_resamples=50,
                              workers=2, on_fit_progress=lambda done, total: progress.append((done, total)))
    for spec in learners:
        for side in (0, 1):
            np.testing.assert_array_equal(parallel.scores[spec.name][side], serial.scores[spec.name][side],
                                          err_msg=spec.name)
        assert parallel.metrics[spec.name]["accuracy"] == serial.metrics[spec.name]["accuracy"]
        assert parallel.fit_seconds[spec.name] > 0
    assert progress == [(i, 12) for i in range(1, 13)]  # every fit reported once, in order of completion


def test_an_encoder_made_in_code_keeps_its_fits_in_process(tmp_path) -> None:
    class Renamed(HashingEncoder):  # same spec, another fingerprint: a worker could not rebuild it
        def fingerprint(self) -> str:
            return "renamed-" + super().fingerprint()

    encoder = Renamed(dim=32)
    assert not rebuilds_from_spec(encoder)
    result = cross_validate(_dataset(40), [LearnerSpec("linear", "bt-linear")], encoder, k=2, cache_dir=tmp_path,
                            n_resamples=20, workers=2)
    assert np.isfinite(result.scores["linear"][0]).all()


def test_worker_counts() -> None:
    assert resolve_workers(1, 25) == 1
    assert resolve_workers(8, 3) == 3  # never more processes than fits
    assert 1 <= resolve_workers(0, 25) <= 25
    for bad in (-1, True, 1.5):
        with pytest.raises(ModelError, match="workers must be"):
            resolve_workers(bad, 25)  # type: ignore[arg-type]
