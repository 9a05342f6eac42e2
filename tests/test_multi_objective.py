"""The multi-objective head recovers known per-objective utilities and known weights (fixed, and gated by prompt),
round-trips through save/load, and refuses bad input; objective labels come from ratings that name their objective."""

from __future__ import annotations

from itertools import combinations
from pathlib import Path

import numpy as np
import pytest

from rewardlab.data import Comparison, FeedbackDataset, Rating
from rewardlab.errors import DataError, ModelError
from rewardlab.rewards import load_head, make_head
from rewardlab.rewards.multi_objective import MultiObjectiveHead
from rewardlab.rewards.objective_labels import create_model, fit_model, objective_matrix, prompt_columns
from rewardlab.rewards.training_set import TrainingSet

NAMES = ["relevance", "factuality", "completeness"]
DIM = 6  # response part; the prompt part is as wide


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def problem(n_prompts: int, weights_of: list[np.ndarray], seed: int = 0, per_prompt: int = 4
            ) -> tuple[TrainingSet, np.ndarray, np.ndarray, np.ndarray]:
    """Rows [response r, prompt p]; objective utilities u_k = 2·r·v_k; labels Bernoulli(σ(u_k)) on the first response
    of each prompt only (the rest masked, as QA-Feedback's predictions 2-4); every pair of a prompt compared with
    P(a wins) = σ(Σ w_k(prompt) (u_k(a) − u_k(b))). Prompt type t (p ≈ ±e_0) picks weights_of[t].

    Returns (data, labels, utilities (n, K), prompt type per item)."""
    rng = np.random.default_rng(seed)
    kind = rng.integers(0, len(weights_of), size=n_prompts)
    p = rng.normal(scale=0.3, size=(n_prompts, DIM))
    p[:, 0] += np.where(kind == 0, 2.0, -2.0)
    r = rng.normal(size=(n_prompts * per_prompt, DIM))
    v = np.linalg.qr(np.random.default_rng(99).normal(size=(DIM, 3)))[0]  # fixed, orthonormal: distinct objectives
    utility = 2.0 * r @ v
    group = np.repeat(np.arange(n_prompts), per_prompt)
    x = np.hstack([r, p[group]]).astype(np.float32)
    labels = np.full(utility.shape, np.nan, dtype=np.float32)
    first = np.arange(0, len(x), per_prompt)
    labels[first] = (rng.random((len(first), 3)) < sigmoid(utility[first])).astype(np.float32)
    pa, pb, target = [], [], []
    for g in range(n_prompts):
        w = weights_of[kind[g]]
        for i, j in combinations(range(g * per_prompt, (g + 1) * per_prompt), 2):
            pa.append(i)
            pb.append(j)
            target.append(float(rng.random() < sigmoid(w @ (utility[i] - utility[j]))))
    items = np.arange(len(x))
    data = TrainingSet(x=x, response_ids=[f"r{i}" for i in items], group=group, pair_a=np.array(pa),
                       pair_b=np.array(pb), pair_target=np.array(target, dtype=np.float32),
                       rating_item=np.zeros(0, dtype=np.int64), rating_value=np.zeros(0, dtype=np.float32),
                       label_item=np.zeros(0, dtype=np.int64), label_value=np.zeros(0, dtype=np.float32))
    return data, labels, utility, kind[group]


def pairwise_accuracy(reward: np.ndarray, utility: np.ndarray, weights: np.ndarray) -> float:
    """Share of random same-prompt-type pairs ordered as the true weighted utility orders them."""
    true = (weights * utility).sum(1)
    rng = np.random.default_rng(3)
    a, b = rng.integers(0, len(true), size=(2, 4000))
    keep = a != b
    return float((np.sign(reward[a] - reward[b]) == np.sign(true[a] - true[b]))[keep].mean())


FIXED = np.array([3.0, 1.5, 0.5])


@pytest.fixture(scope="module")
def fixed_fit() -> tuple[MultiObjectiveHead, TrainingSet, np.ndarray]:
    data, labels, _, _ = problem(800, [FIXED, FIXED], seed=0)
    head = make_head("multi-objective", seed=0, objectives=NAMES, hidden=32)
    assert isinstance(head, MultiObjectiveHead)
    return head.fit(data, labels=labels), data, labels


def test_fixed_weights_recover_objectives_and_their_weights(fixed_fit: tuple[MultiObjectiveHead, TrainingSet,
                                                                             np.ndarray]) -> None:
    head, _, _ = fixed_fit
    test, _, utility, _ = problem(300, [FIXED, FIXED], seed=1)
    outputs = head.predict_objectives(test.x)
    for k, name in enumerate(NAMES):
        corr = np.corrcoef(outputs[:, k], utility[:, k])[0, 1]
        assert corr > 0.9, f"{name}: correlation {corr:.3f} with its true utility"
    weights = head.predict_weights(test.x)
    assert np.allclose(weights, weights[0])  # fixed: one weight vector for every prompt
    shares = weights[0] / weights[0].sum()
    assert np.abs(shares - FIXED / FIXED.sum()).max() < 0.1, shares
    assert np.allclose(head.predict(test.x), (outputs * weights).sum(1), atol=1e-5)
    assert pairwise_accuracy(head.predict(test.x), utility, FIXED) > 0.9
    assert head.fit_log["objective_labels"] == dict.fromkeys(NAMES, 800)


def test_gated_weights_follow_the_prompt() -> None:
    """Two kinds of prompt weigh the objectives oppositely; the gate tells them apart, fixed weights cannot."""
    kinds = [np.array([4.0, 0.3, 0.3]), np.array([0.3, 0.3, 4.0])]
    data, labels, _, _ = problem(800, kinds, seed=2)
    gated = MultiObjectiveHead(objectives=NAMES, scalarization="gated", prompt_columns=[DIM, 2 * DIM], hidden=32,
                               seed=0).fit(data, labels=labels)
    fixed = gated.rescalarized(data, "fixed")
    test, _, utility, kind = problem(300, kinds, seed=3)
    w = gated.predict_weights(test.x)
    assert (w[kind == 0].argmax(1) == 0).mean() > 0.95 and (w[kind == 1].argmax(1) == 2).mean() > 0.95
    true_w = np.where(kind[:, None] == 0, kinds[0], kinds[1])
    acc = {name: np.mean([pairwise_accuracy(h.predict(test.x)[kind == t], utility[kind == t], kinds[t])
                          for t in (0, 1)]) for name, h in (("gated", gated), ("fixed", fixed))}
    assert acc["gated"] > 0.88 and acc["gated"] > acc["fixed"] + 0.05, acc
    # the same frozen objectives under both scalarizations
    assert np.array_equal(gated.predict_objectives(test.x), fixed.predict_objectives(test.x))
    assert true_w.shape == w.shape


def test_save_load_round_trip_is_exact(tmp_path: Path) -> None:
    data, labels, _, _ = problem(120, [FIXED, FIXED], seed=4)
    head = MultiObjectiveHead(objectives=NAMES, scalarization="gated", prompt_columns=(DIM, 2 * DIM), hidden=16,
                              max_epochs=5, seed=1).fit(data, labels=labels)
    head.save(tmp_path / "head")
    loaded = load_head(tmp_path / "head")
    assert isinstance(loaded, MultiObjectiveHead)
    assert loaded.objective_names == NAMES and loaded.params() == head.params()
    for method in ("predict", "predict_objectives", "predict_weights"):
        assert np.array_equal(getattr(loaded, method)(data.x), getattr(head, method)(data.x)), method
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] and not list(tmp_path.rglob("*.pkl"))


def test_without_labels_the_objectives_are_latent_and_the_reward_still_learns() -> None:
    data, _, utility, _ = problem(500, [FIXED, FIXED], seed=5)
    head = make_head("multi-objective", seed=0).fit(data)
    assert head.fit_log["objective_labels"] == 0
    test, _, test_utility, _ = problem(200, [FIXED, FIXED], seed=6)
    assert pairwise_accuracy(head.predict(test.x), test_utility, FIXED) > 0.85


def test_bad_settings_and_labels_are_clear_errors() -> None:
    data, labels, _, _ = problem(40, [FIXED, FIXED], seed=7)
    with pytest.raises(ModelError, match="prompt_columns"):
        MultiObjectiveHead(scalarization="gated").fit(data, labels=labels)
    with pytest.raises(ModelError, match="prompt_columns must be"):
        MultiObjectiveHead(scalarization="gated", prompt_columns=[0, 99]).fit(data, labels=labels)
    with pytest.raises(ModelError, match=r"\(n_items, n_objectives\)"):
        MultiObjectiveHead().fit(data, labels=labels[:, :2])
    with pytest.raises(ModelError, match=r"\[0, 1\]"):
        MultiObjectiveHead().fit(data, labels=labels * 3)
    with pytest.raises(ModelError, match="unknown scalarization 'mean'"):
        MultiObjectiveHead(scalarization="mean").fit(data, labels=labels)
    with pytest.raises(ModelError, match="distinct"):
        MultiObjectiveHead(objectives=["a", "a"]).fit(data, labels=labels[:, :2])


def tiny_dataset() -> FeedbackDataset:
    data = FeedbackDataset("tiny")
    pid = data.add_prompt("q")
    a, b, c = (data.add_response(pid, t) for t in ("a", "b", "c"))
    data.add(Comparison(pid, a, b, "a"))
    data.add(Rating(a, 1.0, (0.0, 1.0), meta={"objective": "relevance"}))
    data.add(Rating(a, 5.0, (1.0, 5.0), meta={"objective": "factuality"}))
    data.add(Rating(a, 0.0, None, meta={"objective": "factuality"}))
    data.add(Rating(b, 3.0, (1.0, 5.0)))  # no objective: not an objective label
    return data


def test_objective_matrix_reads_ratings_that_name_an_objective() -> None:
    data = tiny_dataset()
    ids = sorted(data.responses)
    matrix = objective_matrix(data, ids, ["relevance", "factuality"])
    a = ids.index(next(r for r, resp in data.responses.items() if resp.text == "a"))
    assert matrix[a].tolist() == [1.0, 0.5]  # two factuality labels averaged, on their scales
    assert np.isnan(np.delete(matrix, a, axis=0)).all()
    with pytest.raises(DataError, match=r"row 2, field 'ratings.meta.objective': objective 'factuality' is not one"):
        objective_matrix(data, ids, ["relevance"])
    data.add(Rating(ids[0], 7.0, None, meta={"objective": "relevance"}))
    with pytest.raises(DataError, match=r"row 5, field 'ratings.value'"):
        objective_matrix(data, ids, ["relevance", "factuality"])


def test_prompt_columns_of_each_feature_mode() -> None:
    assert prompt_columns("interaction", 384) == (384, 768)
    assert prompt_columns("prompt+response", 10) == (10, 20)
    assert prompt_columns("response", 10) is None


def test_a_reward_model_trained_with_objective_labels_saves_and_scores(tmp_path: Path) -> None:
    data = FeedbackDataset("texts")
    rng = np.random.default_rng(0)
    words = ["good", "fine", "bad", "awful", "nice", "poor"]
    for q in range(30):
        pid = data.add_prompt(f"question {q}")
        ids = [data.add_response(pid, " ".join(rng.choice(words, size=4)) + f" {q} {i}") for i in range(3)]
        data.add(Comparison(pid, ids[0], ids[1], "a"))
        data.add(Comparison(pid, ids[1], ids[2], "b"))
        data.add(Rating(ids[0], 1.0, (0.0, 1.0), meta={"objective": "relevance"}))
        data.add(Rating(ids[0], float(q % 2), (0.0, 1.0), meta={"objective": "factuality"}))
    model = fit_model(create_model("hashing:32", "interaction", objectives=["relevance", "factuality"],
                                   hidden=8, max_epochs=3), data)
    assert model.head.fit_log["objective_labels"] == {"relevance": 30, "factuality": 30}
    saved = model.save(tmp_path / "model")
    from rewardlab.rewards.model import RewardModel

    loaded = RewardModel.load(saved)
    assert np.array_equal(loaded.score(["question 1"], ["good fine"]), model.score(["question 1"], ["good fine"]))
    assert loaded.kind == "multi-objective" and loaded.head.params()["prompt_columns"] == [32, 64]
