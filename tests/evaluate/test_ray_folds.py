"""Cross-validation fits as Ray tasks give exactly the serial numbers; errors come back as one clear line."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

ray = pytest.importorskip("ray", reason="Ray is an optional extra (pip install 'rewardlab[ray]')")

from rewardlab.embed import make_encoder  # noqa: E402
from rewardlab.embed.ray_embed import RayClusterError  # noqa: E402
from rewardlab.errors import ModelError  # noqa: E402
from rewardlab.evaluate import LearnerSpec, cross_validate  # noqa: E402
from rewardlab.evaluate.predictions import prediction_rows  # noqa: E402
from rewardlab.evaluate.ray_tasks import fold_tasks, map_on_ray  # noqa: E402
from synthetic import worded_preferences  # noqa: E402

# the Ray workers cannot import this test module, so its functions travel by value
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])


def _dataset(n: int = 60):
    return worded_preferences("ray-folds", n)


def test_fits_on_ray_give_the_serial_table_and_predictions_bit_for_bit(local_ray, tmp_path) -> None:
    dataset = _dataset()
    encoder = make_encoder("hashing:64")
    short = {"max_epochs": 5}  # enough for the fits to differ by seed, and a quick test
    learners = [LearnerSpec("linear", "bt-linear"), LearnerSpec("mlp", "bt-mlp", params=short),
                LearnerSpec("trees", "clf-lgbm", params={"n_estimators": 20}),
                LearnerSpec("ensemble", "bt-mlp", ensemble=2, params=short)]
    serial = cross_validate(dataset, learners, encoder, k=3, seed=1, cache_dir=tmp_path, n_resamples=50, workers=1)
    progress: list[tuple[int, int]] = []
    alongside: list[int] = []
    on_ray = cross_validate(dataset, learners, encoder, k=3, seed=1, cache_dir=tmp_path, n_resamples=50,
                            ray="local", on_fit_progress=lambda done, total: progress.append((done, total)),
                            alongside=lambda: alongside.append(len(progress)))
    for spec in learners:
        for side in (0, 1):
            np.testing.assert_array_equal(on_ray.scores[spec.name][side], serial.scores[spec.name][side],
                                          err_msg=spec.name)
        assert on_ray.metrics[spec.name] == serial.metrics[spec.name]
        assert on_ray.fold_accuracy[spec.name] == serial.fold_accuracy[spec.name]
        assert on_ray.fit_seconds[spec.name] > 0
    assert on_ray.vs_reference == serial.vs_reference
    assert prediction_rows(on_ray) == prediction_rows(serial)
    assert progress == [(i, 12) for i in range(1, 13)]
    assert alongside == [0]  # run once, here, while the tasks ran (before the first result was gathered)


def test_fold_tasks_start_with_the_ensembles_in_a_fixed_order() -> None:
    learners = [LearnerSpec("a", "bt-linear"), LearnerSpec("e", "bt-mlp", ensemble=3)]
    assert fold_tasks(learners, 2) == [(0, 1), (1, 1), (0, 0), (1, 0)]


def _square_plus(shared: dict[str, int], item: int) -> int:
    return item * item + shared["offset"]


def _fails_on_three(shared: object, item: int) -> int:
    if item == 3:
        raise ModelError(f"item {item} is not allowed")
    return item


def test_map_on_ray_keeps_the_order_of_the_items(local_ray) -> None:
    seen: list[int] = []
    out = map_on_ray(_square_plus, {"offset": 1}, [5, 1, 4, 2], "local", on_result=lambda item, _: seen.append(item))
    assert out == [26, 2, 17, 5]
    assert seen == [5, 1, 4, 2]


def _dies_once(marker: str, item: int) -> int:
    """Item 2's first run kills its worker process (as a lost node would); Ray runs the task again elsewhere."""
    if item == 2 and not os.path.exists(marker):
        Path(marker).touch()
        os._exit(1)
    return item * 10


def test_a_worker_that_dies_mid_run_costs_nothing_but_a_retry(local_ray, tmp_path) -> None:
    marker = str(tmp_path / "died")
    assert map_on_ray(_dies_once, marker, [1, 2, 3, 4], "local") == [10, 20, 30, 40]
    assert os.path.exists(marker)  # the worker did die once


def test_an_error_inside_a_task_is_the_error_itself(local_ray) -> None:
    with pytest.raises(ModelError) as caught:
        map_on_ray(_fails_on_three, None, [1, 2, 3, 4], "local")
    assert str(caught.value) == "item 3 is not allowed"  # not Ray's wrapped traceback


def test_an_unreachable_address_is_one_line() -> None:
    with pytest.raises(RayClusterError, match="cannot reach the Ray cluster at 127.0.0.1:9") as caught:
        map_on_ray(_square_plus, {"offset": 0}, [1], "127.0.0.1:9")
    assert "\n" not in str(caught.value)
