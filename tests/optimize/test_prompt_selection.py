"""Prompt-OIRL pieces: readers and the leak-free split on the real logs, prompt models, knn tuning, selection,
and the train / select workflow the CLI runs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rewardlab.data.prompt_logs import leak_free_split, read_prompt_logs, read_prompt_oirl
from rewardlab.data.types import normalize_prompt
from rewardlab.errors import DataError, ModelError
from rewardlab.optimize.prompt_tuning import KNN_GRID, KnnTuner, fit_tuned_knn
from rewardlab.optimize.prompts import PromptRewardModel, select_prompts


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
    loaded = PromptRewardModel.load(tmp_path / head)
    assert np.allclose(loaded.predict_proba(q[500:], p, texts), prob, atol=1e-6)


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
    rng = np.random.default_rng(6)
    q = rng.normal(size=(800, 6)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    labels = (rng.random((800, 3)) < np.array([0.45, 0.55, 0.45])).astype(np.float32)
    model = fit_tuned_knn(q, np.eye(3, 6, dtype=np.float32), labels, ["a", "b", "c"], np.arange(800), seed=0)
    assert model.query_agnostic and model.fit_log["knn_tuning"]["query_agnostic"]
    new = rng.normal(size=(50, 6)).astype(np.float32)
    prob = model.predict_proba(new, np.eye(3, 6, dtype=np.float32), ["a", "b", "c"])
    assert np.allclose(prob, labels.mean(0)) and set(select_prompts(prob, [0, 1, 2])) == {1}
    loaded = PromptRewardModel.load(model.save(tmp_path / "m"))
    assert loaded.query_agnostic and np.allclose(loaded.predict_proba(new, np.eye(3, 6, dtype=np.float32),
                                                                      ["a", "b", "c"]), prob)


def test_fit_tuned_knn_uses_the_tuners_choice_and_skips_unlabelled_rows(tmp_path: Path) -> None:
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
    loaded = PromptRewardModel.load(model.save(tmp_path / "m"))
    assert loaded.neighbours == expected.neighbours and loaded.fit_log["knn_tuning"]["cv_success"] == expected.cv_success


def _arithmetic_vs_trivia_logs(path: Path, n: int = 40) -> Path:
    """'Show work.' solves arithmetic, 'Answer:' solves trivia; 'Guess.' appears only on test rows (never trained)."""
    rows = []
    for i in range(n):
        for query, good in ((f"what is {i} plus {i + 3}", "Show work."), (f"who wrote book number {i}", "Answer:")):
            rows += [{"query": query, "prompt": p, "correct": int(p == good)} for p in ("Show work.", "Answer:")]
    rows.append({"query": "what is 1000 plus 1", "prompt": "Guess.", "correct": 0, "split": "test"})
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def test_train_and_select_as_library_calls(tmp_path: Path) -> None:
    from rewardlab.data.prompt_logs import load_prompt_logs
    from rewardlab.optimize.prompt_opt import select_prompts_for_queries, train_prompt_model

    logs = load_prompt_logs(_arithmetic_vs_trivia_logs(tmp_path / "logs.jsonl"))
    calls: list[tuple[int, int]] = []
    model = train_prompt_model(logs, encoder="hashing:256", on_progress=lambda done, total: calls.append((done, total)))
    assert calls and calls[-1][0] == calls[-1][1]
    assert model.known_prompts == ["Show work.", "Answer:"] and model.candidate_prompts == ["Show work.", "Answer:", "Guess."]
    assert model.encoder == "hashing:256" and model.train_info["rows"] == 80 and model.train_info["logs"] == "logs.jsonl"
    assert model.fit_log["knn_tuning"] and not model.query_agnostic

    loaded = PromptRewardModel.load(model.save(tmp_path / "pm"))
    assert (loaded.encoder, loaded.candidate_prompts, loaded.train_info) == (model.encoder, model.candidate_prompts,
                                                                               model.train_info)
    picks = select_prompts_for_queries(loaded, ["what is 100 plus 103", "who wrote book number 100"])
    assert [p["prompt"] for p in picks] == ["Show work.", "Answer:"] and all(0 <= p["p_correct"] <= 1 for p in picks)
    assert {p["prompt"] for p in select_prompts_for_queries(loaded, ["what is 5 plus 8"], ["Guess."])} == {"Guess."}
    with pytest.raises(ModelError, match="no candidate prompts"):
        select_prompts_for_queries(loaded, ["q"], ["Guess."], only_trained=True)
    with pytest.raises(ModelError, match="unknown prompt-model head"):
        train_prompt_model(logs, head="forest", encoder="hashing:256")


def test_select_refuses_a_model_whose_encoder_changed(tmp_path: Path) -> None:
    from rewardlab.data.prompt_logs import load_prompt_logs
    from rewardlab.optimize.prompt_opt import select_prompts_for_queries, train_prompt_model

    model = train_prompt_model(load_prompt_logs(_arithmetic_vs_trivia_logs(tmp_path / "logs.jsonl", 10)), tune=False,
                               encoder="hashing:64")
    model.train_info["encoder_fingerprint"] = "something-else"
    with pytest.raises(ModelError, match="meaningless"):
        select_prompts_for_queries(model, ["what is 1 plus 4"])


def test_models_saved_before_the_provenance_fields_still_load(tmp_path: Path) -> None:
    """Older config.json kept the encoder, logs and candidates at its top level, beside the model's own keys."""
    q = np.eye(4, 8, dtype=np.float32)
    model = PromptRewardModel(head="knn").fit(q, np.eye(2, 8, dtype=np.float32), np.array([[1, 0], [0, 1], [1, 0], [0, 1.0]]),
                                              ["a", "b"])
    directory = model.save(tmp_path / "old")
    config = json.loads((directory / "config.json").read_text())
    for key in ("rewardlab_version", "train"):
        del config[key]
    config.update(encoder="hashing:8", logs="svamp", candidate_prompts=["a", "b", "c"])
    (directory / "config.json").write_text(json.dumps(config))
    loaded = PromptRewardModel.load(directory)
    assert loaded.encoder == "hashing:8" and loaded.train_info == {"logs": "svamp"} and loaded.candidate_prompts[-1] == "c"
