"""The span reward model: it recovers planted span errors (one of them only visible in context), saves and loads
to the same predictions, folds spans into a response reward; and span detection metrics with CIs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rewardlab.data.spans import SpanRow, split_spans
from rewardlab.embed.base import make_encoder
from rewardlab.errors import ModelError
from rewardlab.evaluate.span_detection import detection_metrics, detection_table, weighted_auc
from rewardlab.rewards.span_config import SPAN_AGGREGATIONS
from rewardlab.rewards.span_rewards import SpanRewardModel, best_f1_threshold, span_features

ANIMALS = [f"animal{i}" for i in range(30)]
WORDS = [f"word{i}" for i in range(300)]
#: few hashed dimensions: the planted signals are a few columns among (4 x 64 + 3)
ENCODER = "hashing:64"


def grounded_spans(n: int, seed: int) -> list[SpanRow]:
    """Per question, an answer of 4 sentences, each about an animal: 'factuality' errors name an animal the prompt
    does not (visible only against the prompt); 'relevance' errors open with 'meanwhile in other news' (visible in
    the span)."""
    rng = np.random.default_rng(seed)
    rows = []
    for q in range(n):
        animal = str(rng.choice(ANIMALS))
        prompt = f"Passages: the {animal} lives here. Question: tell me about the {animal}"
        wrong = rng.random(4) < 0.3
        off = rng.random(4) < 0.3
        sentences = []
        for k in range(4):
            named = str(rng.choice([a for a in ANIMALS if a != animal])) if wrong[k] else animal
            opening = "Meanwhile in other news the" if off[k] else "The"
            sentences.append(f"{opening} {named} {' '.join(rng.choice(WORDS, 2))}.")
        response = " ".join(sentences)
        for (a, b), bad_fact, bad_rel in zip(split_spans(response, "sentence"), wrong, off):
            rows.append(SpanRow(f"q{seed}-{q}", prompt, response, a, b, "factuality", int(bad_fact)))
            rows.append(SpanRow(f"q{seed}-{q}", prompt, response, a, b, "relevance", int(bad_rel)))
    return rows


def brute_auc(p: np.ndarray, y: np.ndarray) -> float:
    pos, neg = p[y == 1], p[y == 0]
    return float(((pos[:, None] > neg[None]).sum() + 0.5 * (pos[:, None] == neg[None]).sum()) / (len(pos) * len(neg)))


@pytest.fixture(scope="module")
def fitted() -> tuple[SpanRewardModel, list[SpanRow]]:
    model = SpanRewardModel.create(encoder=ENCODER, splits="sentence", seed=0)
    return model.fit(grounded_spans(300, seed=1)), grounded_spans(60, seed=2)


def test_recovers_planted_errors_in_and_out_of_context(fitted: tuple[SpanRewardModel, list[SpanRow]]) -> None:
    model, test = fitted
    assert model.kinds == ["factuality", "relevance"]
    p = model.predict_rows(test)
    y = np.array([r.label for r in test])
    for kind in ("factuality", "relevance"):
        mask = np.array([r.kind == kind for r in test])
        assert brute_auc(p[mask], y[mask]) > 0.85, kind
    assert model.train_info["spans"]["factuality"]["spans"] == 1200


def test_span_text_alone_cannot_see_grounding() -> None:
    """The same data with the prompt's view removed from the product: factuality falls to chance, so the head above
    used the prompt (the control that makes the previous test mean 'in context')."""
    from rewardlab.rewards.span_config import CONTEXT_MODES

    CONTEXT_MODES.register("test-span-only", ("s",))
    try:
        model = SpanRewardModel.create(encoder=ENCODER, context="test-span-only", splits="sentence")
        model.fit([r for r in grounded_spans(300, seed=1) if r.kind == "factuality"])
        test = [r for r in grounded_spans(60, seed=2) if r.kind == "factuality"]
        assert brute_auc(model.predict_rows(test), np.array([r.label for r in test])) < 0.7
    finally:
        CONTEXT_MODES.unregister("test-span-only")


def test_save_load_same_predictions(fitted: tuple[SpanRewardModel, list[SpanRow]], tmp_path: Path) -> None:
    model, test = fitted
    model.save(tmp_path / "m")
    loaded = SpanRewardModel.load(tmp_path / "m")
    assert np.array_equal(loaded.predict_rows(test), model.predict_rows(test))
    assert loaded.thresholds == model.thresholds and loaded.splits == model.splits
    assert loaded.context == model.context and loaded.aggregate == model.aggregate
    assert any(p.suffix == ".safetensors" for p in (tmp_path / "m" / "heads").rglob("*"))
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    config["format"] = "rewardlab.step_reward_model/1"
    (tmp_path / "m" / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelError, match="not a span reward model"):
        SpanRewardModel.load(tmp_path / "m")


def test_damaged_weights_are_refused(fitted: tuple[SpanRewardModel, list[SpanRow]], tmp_path: Path) -> None:
    model, _ = fitted
    model.save(tmp_path / "m")
    weights = next(p for p in (tmp_path / "m" / "heads").rglob("*.safetensors"))
    weights.write_bytes(weights.read_bytes()[:-4] + b"\0\0\0\0")
    with pytest.raises(ModelError, match="checksum"):
        SpanRewardModel.load(tmp_path / "m")


def test_response_reward_folds_spans(fitted: tuple[SpanRewardModel, list[SpanRow]]) -> None:
    model, test = fitted
    prompt = test[0].prompt
    animal = prompt.split("the ")[1].split(" ")[0]
    good = f"The {animal} word1 word2 word3 word4. The {animal} word5 word6 word7 word8."
    bad = f"Meanwhile in other news the {animal} word1 word2 word3 word4. Meanwhile in other news the {animal} word5."
    spans = model.score_spans([prompt, prompt], [good, bad])
    assert [s.kind for s in spans[0]] == ["factuality", "factuality", "relevance", "relevance"]
    assert all(s.text == good[s.start:s.end] for s in spans[0])
    for how in SPAN_AGGREGATIONS:
        rewards = model.score([prompt, prompt], [good, bad], aggregate=how)
        assert rewards[0] > rewards[1], how
    only_relevance = model.response_reward(spans[1], weights={"factuality": 0.0})
    p = np.array([s.probability for s in spans[1] if s.kind == "relevance"])
    lengths = np.array([s.end - s.start for s in spans[1] if s.kind == "relevance"], float)
    assert only_relevance == pytest.approx(-np.dot(p, lengths) / lengths.sum())
    assert model.score([prompt], ["   "])[0] == 0.0  # no spans, no errors


def test_bad_training_setups() -> None:
    with pytest.raises(ModelError, match="learns from labels"):
        SpanRewardModel.create("bt-mlp", encoder="hashing")
    rows = [r for r in grounded_spans(20, seed=3) if r.kind == "relevance"]
    with pytest.raises(ModelError, match="with and without errors"):
        SpanRewardModel.create(encoder="hashing").fit([SpanRow(r.question_id, r.prompt, r.response, r.start, r.end,
                                                               r.kind, 0) for r in rows])
    with pytest.raises(ModelError, match="not fitted"):
        SpanRewardModel.create(encoder="hashing").score(["p"], ["r."])
    with pytest.raises(ModelError, match="no head for kind"):
        SpanRewardModel.create(encoder="hashing").fit(rows).predict_rows([SpanRow("q", "p", "r.", 0, 2, "tone", 0)])


def test_weighted_auc_matches_pairs_and_weights() -> None:
    rng = np.random.default_rng(0)
    p = np.round(rng.random(200), 1)  # many ties
    y = (rng.random(200) < 0.3 + 0.4 * p).astype(int)
    assert weighted_auc(p, y, np.ones((1, 200)))[0] == pytest.approx(brute_auc(p, y))
    counts = rng.integers(0, 3, 200)
    repeated = np.repeat(np.arange(200), counts)
    assert weighted_auc(p, y, counts[None].astype(float))[0] == pytest.approx(brute_auc(p[repeated], y[repeated]))


def test_detection_metrics_with_cis() -> None:
    y = np.array([1, 1, 0, 0, 1, 0, 0, 0] * 10)
    p = np.array([0.9, 0.4, 0.6, 0.1, 0.8, 0.2, 0.3, 0.1] * 10)
    groups = [f"q{i // 4}" for i in range(80)]
    m = detection_metrics(p, y, groups, 0.5, n_resamples=200)
    assert m["precision"].value == pytest.approx(2 / 3) and m["recall"].value == pytest.approx(2 / 3)
    assert m["f1"].value == pytest.approx(2 / 3) and m["auc"].value == pytest.approx(brute_auc(p, y))
    assert all(e.low <= e.value <= e.high and e.n == 80 for e in m.values())
    rows = detection_table(["a"] * 40 + ["b"] * 40, p, y, groups, np.full(80, 0.5), n_resamples=100)
    assert [(r.kind, r.n, r.questions) for r in rows] == [("a", 40, 10), ("b", 40, 10)]
    assert best_f1_threshold(p, y) == pytest.approx(0.4)  # F1 6/7 there, 4/5 at 0.8


def test_position_control_sees_only_where_and_how_long() -> None:
    """The trivial control (context ``position``): 3 columns, no text embedded; it finds errors planted by place."""
    rows = []
    rng = np.random.default_rng(4)
    for q in range(60):
        response = " ".join(f"Sentence {k} {' '.join(rng.choice(WORDS, int(rng.integers(2, 6))))}." for k in range(5))
        for k, (a, b) in enumerate(split_spans(response, "sentence")):
            rows.append(SpanRow(f"q{q}", "Q?", response, a, b, "relevance", int(k >= 3)))  # the last two ramble
    x = span_features(["Q?"] * 3, ["One two. Three four five."] * 3, [(0, 8), (9, 25), (0, 25)], make_encoder("hashing"),
                      "position")
    assert x.shape == (3, 3)
    assert x[:, 0] == pytest.approx([0, 9 / 25, 0]) and x[:, 2] == pytest.approx(np.log1p([8, 16, 25]))
    model = SpanRewardModel.create(encoder="hashing", context="position", splits="sentence").fit(rows[:200])
    assert brute_auc(model.predict_rows(rows[200:]), np.array([r.label for r in rows[200:]])) > 0.95
