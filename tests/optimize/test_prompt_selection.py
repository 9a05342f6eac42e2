"""Prompt-OIRL pieces on a slice of the real logs: readers, leak-free split, prompt models, selection, subsets."""

from __future__ import annotations

import json
from math import comb
from pathlib import Path

import numpy as np
import pytest

from rewardlab.data.prompt_logs import leak_free_split, read_prompt_logs, read_prompt_oirl
from rewardlab.data.types import normalize_prompt
from rewardlab.errors import DataError
from rewardlab.experiments.prompt_oirl import OirlConfig, embed_logs, llama_confidence, run_split
from rewardlab.optimize.prompts import KNN_GRID, KnnTuner, PromptRewardModel, select_prompts


@pytest.fixture
def oirl_dir(shared_data: Path) -> Path:
    return shared_data / "prompt-oirl"


def test_released_logs_and_their_leak(oirl_dir: Path) -> None:
    logs = read_prompt_oirl("svamp", oirl_dir)
    assert logs.correct.shape == (19690, 16) and (logs.split == "test").sum() == 4690
    train, test = logs.rows("train"), logs.rows("test")
    assert logs.prompts_run_on(train) == [0, 1, 2, 3, 4, 5] and logs.prompts_run_on(test) == list(range(16))
    groups = logs.question_groups()
    assert np.isin(groups[test], groups[train]).all()  # the released split: every test question is also trained on
    split = leak_free_split(logs, 0.3, seed=0)
    norm = np.array([normalize_prompt(q) for q in logs.queries])
    assert not set(norm[split == "train"]) & set(norm[split == "test"])
    assert not np.isnan(logs.correct[split == "test"]).any()  # test rows keep all 16 labels
    assert (split == "test").sum() > 1000


def test_selection_stays_in_its_pool() -> None:
    rng = np.random.default_rng(0)
    prob = rng.random((500, 16))
    pool, fallback = [1, 4, 5], [6, 9, 12]
    assert set(select_prompts(prob, pool)) <= set(pool)
    with_fallback = select_prompts(prob, pool, fallback, threshold=0.7)
    assert set(with_fallback) <= set(pool) | set(fallback)
    best_in_pool = prob[:, pool].max(1)
    assert np.all(np.isin(with_fallback[best_in_pool >= 0.7], pool))
    assert np.all(np.isin(with_fallback[best_in_pool < 0.7], fallback))
    with pytest.raises(ValueError):
        select_prompts(prob, [])


@pytest.mark.parametrize("head", ["knn", "mlp", "logistic"])
def test_prompt_model_learns_and_round_trips(head: str, tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    q = rng.normal(size=(600, 8)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    p = np.eye(3, 8, dtype=np.float32)
    # prompt j works on queries whose coordinate j is positive
    labels = (q[:, :3] > 0).astype(np.float32)
    labels[rng.random(labels.shape) < 0.2] = np.nan
    texts = ["a", "b", "c"]
    model = PromptRewardModel(head=head, seed=0, max_epochs=80).fit(q[:500], p, labels[:500], texts)
    prob = model.predict_proba(q[500:], p, texts)
    chosen = select_prompts(prob, [0, 1, 2])
    truth = (q[500:, :3] > 0).astype(float)
    assert truth[np.arange(100), chosen].mean() > truth.mean(0).max() + 0.1  # query-dependent beats any one prompt
    model.save(tmp_path / head)
    loaded, _ = PromptRewardModel.load(tmp_path / head)
    assert np.allclose(loaded.predict_proba(q[500:], p, texts), prob, atol=1e-6)


def test_subsets_are_enumerated_exactly(oirl_dir: Path) -> None:
    logs = read_prompt_oirl("gsm8k", oirl_dir)
    keep = np.concatenate([logs.rows("train")[:300], logs.rows("test")[:120]])
    small = logs.take(keep)
    q, p = embed_logs(small, "hashing:64")
    confidence = llama_confidence(oirl_dir, "gsm8k", 1000, 16)[:120]
    result = run_split(small, small.split, q, p, confidence, OirlConfig(ks=(1, 2, 3, 6), n_resamples=100))
    for k, entry in result["by_k"].items():
        assert entry["subsets"] == comb(6, int(k))
        for method in ("best_prompt", "self_confidence", "ours", "ours_heldout", "oracle_k"):
            assert 0 <= entry[method]["value"] <= result["oracle_16"]["value"] + 1e-12
        assert entry["ours"]["value"] <= entry["oracle_k"]["value"] + 1e-12
    assert result["by_k"]["1"]["ours"]["value"] == pytest.approx(result["by_k"]["1"]["best_prompt"]["value"])
    assert result["train_prompts"] == [0, 1, 2, 3, 4, 5] and result["heldout_prompts"] == list(range(6, 16))


def test_own_logs_long_format(tmp_path: Path) -> None:
    path = tmp_path / "logs.jsonl"
    rows = [{"query": "2+2?", "prompt": "Think.", "correct": 1}, {"query": "2+2?", "prompt": "Answer:", "correct": 0},
            {"query": "3+5?", "prompt": "Think.", "correct": "true", "split": "test"}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    logs = read_prompt_logs(path)
    assert logs.queries == ["2+2?", "3+5?"] and logs.prompts == ["Think.", "Answer:"]
    assert logs.correct[0].tolist() == [1.0, 0.0] and logs.correct[1, 0] == 1.0 and np.isnan(logs.correct[1, 1])
    assert logs.split.tolist() == ["train", "test"]
    rows.append({"query": "2+2?", "prompt": "Think.", "correct": 0})
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    with pytest.raises(DataError) as info:
        read_prompt_logs(path)
    assert info.value.row == 4 and info.value.field == "correct" and "row 1" in str(info.value)


def test_knn_tuning_prefers_what_generalises() -> None:
    """Prompt j works where query coordinate j is positive, with label noise: cross-validation should pick a
    setting that selects well, and its CV score should be the best of the grid."""
    rng = np.random.default_rng(3)
    q = rng.normal(size=(1200, 6)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    labels = ((q[:, :3] > 0) ^ (rng.random((1200, 3)) < 0.25)).astype(np.float32)
    tuner = KnnTuner(q, np.arange(1200) // 2, folds=5, seed=0)  # pairs of rows share a fold
    assert all(len(set(tuner.fold[i:i + 2])) == 1 for i in range(0, 1200, 2))
    tuned = tuner.tune(labels)
    assert tuned.cv_success == max(s["cv_success"] for s in tuned.scores)
    assert len(tuned.scores) == np.prod([len(v) for v in KNN_GRID.values()])
    worst = min(s["cv_success"] for s in tuned.scores)
    assert tuned.cv_success > labels.mean(0).max() + 0.05 and tuned.cv_success > worst
    baseline = sum(labels[tuner.fold == f][:, labels[tuner.fold != f].mean(0).argmax()].sum() for f in range(5))
    assert tuned.best_prompt_cv_success == pytest.approx(baseline / 1200) and tuned.cv_gain > 0.05
    assert 0 < tuned.cv_gain_se < 0.03 and tuned.query_dependent
    with pytest.raises(Exception, match="labelled on every"):
        tuner.tune(np.where(rng.random(labels.shape) < 0.1, np.nan, labels))


def test_knn_tuning_reports_no_gain_when_labels_ignore_the_query() -> None:
    """Prompt 0 is better everywhere and nothing depends on the query: the CV gain over the best prompt is ~0."""
    rng = np.random.default_rng(5)
    q = rng.normal(size=(1500, 6)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    labels = (rng.random((1500, 3)) < np.array([0.6, 0.4, 0.4])).astype(np.float32)
    tuned = KnnTuner(q, np.arange(1500), seed=0).tune(labels)
    assert tuned.best_prompt_cv_success == pytest.approx(labels[:, 0].mean())
    assert abs(tuned.cv_gain) < 0.01 and not tuned.query_dependent


def test_fit_tuned_knn_falls_back_to_the_best_prompt_without_cv_gain(tmp_path: Path) -> None:
    """Prompt 1 is best for every query: no setting beats it out of fold, so the model must pick it everywhere
    (a noisy knn would sometimes pick prompt 0 or 2), and it stays query-agnostic after save / load."""
    from rewardlab.optimize.prompts import fit_tuned_knn

    rng = np.random.default_rng(6)
    q = rng.normal(size=(800, 6)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    labels = (rng.random((800, 3)) < np.array([0.45, 0.55, 0.45])).astype(np.float32)
    model = fit_tuned_knn(q, np.eye(3, 6, dtype=np.float32), labels, ["a", "b", "c"], np.arange(800), seed=0)
    assert model.query_agnostic and model.fit_log["knn_tuning"]["query_agnostic"]
    new = rng.normal(size=(50, 6)).astype(np.float32)
    prob = model.predict_proba(new, np.eye(3, 6, dtype=np.float32), ["a", "b", "c"])
    assert np.allclose(prob, labels.mean(0)) and set(select_prompts(prob, [0, 1, 2])) == {1}
    loaded, _ = PromptRewardModel.load(model.save(tmp_path / "m"))
    assert loaded.query_agnostic and np.allclose(loaded.predict_proba(new, np.eye(3, 6, dtype=np.float32),
                                                                      ["a", "b", "c"]), prob)


def test_fit_tuned_knn_uses_the_tuners_choice_and_skips_unlabelled_rows(tmp_path: Path) -> None:
    from rewardlab.optimize.prompts import fit_tuned_knn

    rng = np.random.default_rng(4)
    q = rng.normal(size=(600, 6)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    labels = ((q[:, :3] > 0) ^ (rng.random((600, 3)) < 0.25)).astype(np.float32)
    groups = np.arange(600)
    expected = KnnTuner(q[:500], groups[:500], seed=0).tune(labels[:500])
    partly = labels.copy()
    partly[500:, 0] = np.nan  # rows not fully labelled take no part in tuning (they stay in the memory)
    model = fit_tuned_knn(q, np.eye(3, 6, dtype=np.float32), partly, ["a", "b", "c"], groups, seed=0)
    assert expected.query_dependent and not model.query_agnostic
    assert (model.neighbours, model.prior_weight, model.similarity_temperature) == (
        expected.neighbours, expected.prior_weight, expected.similarity_temperature)
    assert model.fit_log["knn_tuning"]["rows"] == 500
    loaded, _ = PromptRewardModel.load(model.save(tmp_path / "m"))
    assert loaded.neighbours == expected.neighbours and loaded.fit_log["knn_tuning"]["cv_success"] == expected.cv_success
