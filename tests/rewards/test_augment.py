"""Training augmentation: off-topic, truncated and padded pairs, in a model, in CV and on the command line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cli_helpers import demo_lines, run
from rewardlab.data import Comparison, FeedbackDataset
from rewardlab.embed import make_encoder
from rewardlab.errors import InvalidValueError
from rewardlab.evaluate.crossval import LearnerSpec, cross_validate
from rewardlab.rewards import RewardModel, featurize_dataset
from rewardlab.rewards import model as model_module
from rewardlab.rewards.augment import (
    AugmentSpec,
    augment_counts,
    augment_dataset,
    format_augment,
    pad,
    parse_augment,
    truncate,
)

ENCODER = make_encoder("hashing:128")
TOPICS = ["baking bread", "fixing a bike", "learning piano", "planting tomatoes", "writing a resume", "running a 5k",
          "painting a fence", "cooking rice", "training a puppy", "saving money"]


def topic_dataset(n: int = 40) -> FeedbackDataset:
    """n prompts, each with a long good answer, a short bad one; some ties; a duplicated prompt (other case) and a
    loser that is word for word another prompt's winner."""
    ds = FeedbackDataset("topics")
    for i in range(n):
        topic = TOPICS[i % len(TOPICS)]
        pid = ds.add_prompt(f"Question {i}: how do I get started with {topic}? Please be specific.")
        good = ds.add_response(pid, f"Start small with {topic} ({i}). First, gather what you need and set aside time. "
                                    f"Then practise a little every day and note what works. Finally, ask someone "
                                    f"experienced about {topic} for feedback.")
        bad = ds.add_response(pid, f"No idea about {topic}, sorry ({i}).")
        ds.add(Comparison(pid, good, bad, "a") if i % 2 else Comparison(pid, bad, good, "b"))
        if i % 5 == 0:
            other = ds.add_response(pid, f"Maybe try {topic} tomorrow ({i}), it is probably fine either way.")
            ds.add(Comparison(pid, bad, other, "tie"))
    dup = ds.add_prompt("QUESTION 0: how do I get started with baking bread? please be specific")
    ds.add(Comparison(dup, ds.add_response(dup, "Buy flour, yeast and salt, then follow a simple recipe."),
                      ds.add_response(dup, "Bread is hard."), "a"))
    copier = ds.add_prompt("Question 99: tell me about baking bread, quickly.")
    winner_0 = next(c for c in ds.comparisons if c.prompt_id == ds.add_prompt(
        "Question 0: how do I get started with baking bread? Please be specific."))
    copied = ds.responses[winner_0.a if winner_0.outcome == "a" else winner_0.b].text
    ds.add(Comparison(copier, ds.add_response(copier, "Mix flour and water, knead, let it rise, bake."),
                      ds.add_response(copier, copied), "a"))
    return ds


def winners_of(ds: FeedbackDataset) -> set[str]:
    return {c.a if c.outcome == "a" else c.b for c in ds.comparisons if c.outcome != "tie" and "augment" not in c.meta}


def sides(c: Comparison) -> tuple[str, str]:
    """(winner, loser) of a decided comparison."""
    return (c.a, c.b) if c.outcome == "a" else (c.b, c.a)


# ------------------------------------------------------------------------------------------------ parsing
def test_parse_specs() -> None:
    assert parse_augment("off-topic") == [AugmentSpec("off-topic", 0.5)]
    specs = parse_augment(" off-topic:0.5 , truncated:0.2,padded:2")
    assert specs == [AugmentSpec("off-topic", 0.5), AugmentSpec("truncated", 0.2), AugmentSpec("padded", 2.0)]
    assert format_augment(specs) == "off-topic:0.5,truncated:0.2,padded:2"
    assert parse_augment(format_augment(specs)) == specs


@pytest.mark.parametrize("spec,message", [
    ("", "empty"), ("  ", "empty"), ("off-topic,", "empty item"), ("sideways", "unknown augmentation 'sideways'"),
    ("off-topic:x", "not a number"), ("off-topic:0", "ratio must be"), ("truncated:-1", "ratio must be"),
    ("padded:inf", "ratio must be"), ("padded:nan", "ratio must be"), ("padded:11", "ratio must be"),
    ("off-topic,off-topic:0.2", "given twice"),
])
def test_bad_specs_are_clear_errors(spec: str, message: str) -> None:
    with pytest.raises(InvalidValueError, match=message):
        parse_augment(spec)


# ------------------------------------------------------------------------------------------------ the pairs
def test_off_topic_pairs_never_pair_a_prompt_with_itself() -> None:
    ds = topic_dataset()
    before = ds.fingerprint()
    out = augment_dataset(ds, "off-topic:1", ENCODER, seed=3)
    assert ds.fingerprint() == before and len(out.comparisons) > len(ds.comparisons)  # a new dataset
    groups = ds.prompt_groups()
    winners = winners_of(ds)
    added = [c for c in out.comparisons if c.meta.get("augment") == "off-topic"]
    assert len(added) == len(ds.comparisons)  # ratio 1
    for c in added:
        good, bad = sides(c)
        assert c.annotator_id == "synthetic:off-topic"
        assert good in winners and ds.responses[good].prompt_id == c.prompt_id  # a winner of this prompt
        source_prompt, source_response = c.meta["source_prompt"], c.meta["source_response"]
        assert source_prompt != c.prompt_id and groups[source_prompt] != groups[c.prompt_id]
        assert source_response in winners and ds.responses[source_response].prompt_id == source_prompt
        assert out.responses[bad].text == ds.responses[source_response].text
        assert out.responses[bad].prompt_id == c.prompt_id and bad not in ds.responses
        own_texts = {r.text for r in ds.responses.values() if r.prompt_id == c.prompt_id}
        assert out.responses[bad].text not in own_texts  # never a response this prompt already has
        assert out.prompts_of(c) == {c.prompt_id}
    assert "off-topic" in out.notes[-1] and str(len(added)) in out.notes[-1]
    assert augment_dataset(ds, "off-topic:1", ENCODER, seed=3).fingerprint() == out.fingerprint()  # deterministic


@pytest.mark.parametrize("ratio", [0.1, 0.25, 0.5])
def test_ratio_is_respected(ratio: float) -> None:
    ds = topic_dataset()
    out = augment_dataset(ds, [AugmentSpec("off-topic", ratio), AugmentSpec("truncated", ratio),
                               AugmentSpec("padded", ratio)], ENCODER)
    expected = round(ratio * len(ds.comparisons))
    assert augment_counts(out) == {"off-topic": expected, "truncated": expected, "padded": expected}
    assert len(out.comparisons) == len(ds.comparisons) + 3 * expected


def test_fewer_candidates_than_asked_are_noted() -> None:
    ds = topic_dataset(10)
    out = augment_dataset(ds, "truncated:10", ENCODER)
    n = augment_counts(out)["truncated"]
    assert 0 < n <= len(winners_of(ds)) and "asked" in out.notes[-1]


def test_truncated_is_shorter_and_padded_longer() -> None:
    ds = topic_dataset()
    out = augment_dataset(ds, "truncated:0.5,padded:0.5", ENCODER, seed=1)
    winners = winners_of(ds)
    for c in out.comparisons[len(ds.comparisons):]:
        good, bad = sides(c)
        full, changed = ds.responses[good].text, out.responses[bad].text
        assert good in winners and c.meta["source_response"] == good  # only a good response is cut or padded
        assert out.responses[bad].prompt_id == c.prompt_id and out.responses[bad].source == f"augment:{c.meta['augment']}"
        if c.meta["augment"] == "truncated":
            assert full.startswith(changed) and 0.3 * len(full) <= len(changed) <= 0.6 * len(full)
        else:
            assert len(changed) > len(full) and set(changed.split()) == set(full.split())


def test_truncate_and_pad_on_texts() -> None:
    text = "One two three four. Five six seven eight nine. Ten eleven twelve thirteen fourteen fifteen."
    cut = truncate(text, 0.45)
    assert cut == "One two three four. Five six seven eight nine."
    assert truncate("Too short to cut.", 0.5) is None
    no_sentences = " ".join(f"word{i}" for i in range(20))
    cut = truncate(no_sentences, 0.5)
    assert cut is not None and no_sentences.startswith(cut + " ")  # a word boundary
    padded = pad("Hi. This sentence has words.", np.random.default_rng(0))
    assert padded == "Hi. This sentence has words. This sentence has words."
    assert pad("Hi. Ok.", np.random.default_rng(0)) is None


# ------------------------------------------------------------------------------------------------ in a model
def test_config_round_trip_and_counts(tmp_path: Path) -> None:
    ds = topic_dataset()
    model = RewardModel.create("bt-linear", encoder=ENCODER, seed=2, augment="off-topic:0.3, padded")
    assert model.augment == "off-topic:0.3,padded:0.5"
    model.fit(ds)
    info = model.train_info["augment"]
    n = len(ds.comparisons)
    assert info["spec"] == model.augment and info["added"] == {"off-topic": round(0.3 * n), "padded": round(0.5 * n)}
    assert model.train_info["data_fingerprint"] == ds.fingerprint()  # the data as given
    model.save(tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["augment"] == "off-topic:0.3,padded:0.5" and config["augment_seed"] == 2
    loaded = RewardModel.load(tmp_path / "m")
    assert loaded.augment == model.augment and loaded.augment_seed == 2
    assert loaded.train_info["augment"]["added"] == info["added"]
    plain = RewardModel.create("bt-linear", encoder=ENCODER).fit(ds)
    assert plain.augment is None and "augment" not in plain.train_info
    with pytest.raises(InvalidValueError, match="unknown augmentation"):
        RewardModel.create("bt-linear", encoder=ENCODER, augment="shuffled")


def test_fit_with_precomputed_rows_featurizes_only_the_new_responses() -> None:
    ds = topic_dataset()
    rows, _ = featurize_dataset(ds, ENCODER, "interaction")
    given = dict(rows)
    model = RewardModel.create("bt-linear", encoder=ENCODER, augment="off-topic,truncated").fit(ds, feature_rows=rows)
    assert rows.keys() == given.keys()  # the caller's rows are left as they were
    again = RewardModel.create("bt-linear", encoder=ENCODER, augment="off-topic,truncated").fit(ds)
    x = np.stack(list(rows.values()))
    assert np.allclose(model.predict(x), again.predict(x), atol=1e-5)  # the same training set either way


def test_augmentation_in_cv_never_touches_test_prompts(monkeypatch: pytest.MonkeyPatch) -> None:
    ds = topic_dataset()
    seen: list[tuple[FeedbackDataset, FeedbackDataset]] = []

    def recording(dataset: FeedbackDataset, *args: object, **kwargs: object) -> FeedbackDataset:
        out = augment_dataset(dataset, *args, **kwargs)  # type: ignore[arg-type]
        seen.append((dataset, out))
        return out

    monkeypatch.setattr(model_module, "augment_dataset", recording)
    k, seed = 3, 0
    result = cross_validate(ds, [LearnerSpec("bt-linear", "bt-linear")], ENCODER, k=k, seed=seed,
                            augment="off-topic:1,truncated:0.5,padded:0.5", n_resamples=50)
    assert len(seen) == k and len(result.pair_ids) == len(ds.comparisons)  # test pairs are not augmented
    fold_of = ds.fold_of_prompt(k, seed)
    for fold, (train, augmented) in enumerate(seen):
        train_prompts = {pid for pid, f in fold_of.items() if f != fold}
        assert set(train.prompts) == train_prompts and set(augmented.prompts) == train_prompts
        train_texts = {r.text for r in train.responses.values()}
        for c in augmented.comparisons[len(train.comparisons):]:
            source = c.meta.get("source_prompt", c.prompt_id)
            assert c.prompt_id in train_prompts and source in train_prompts
            assert ds.responses[c.meta["source_response"]].text in train_texts
        test_texts = {r.text for r in ds.responses.values() if fold_of[r.prompt_id] == fold} - train_texts
        assert not test_texts & {r.text for r in augmented.responses.values()}


# ------------------------------------------------------------------------------------------------ the command
def test_train_augment_on_the_command_line(tmp_path: Path) -> None:
    data = tmp_path / "hh.jsonl"
    data.write_text("".join(demo_lines(80)), encoding="utf-8")
    model_dir = tmp_path / "model"
    code, output = run("train", str(data), "--out", str(model_dir), "--head", "bt-linear", "--encoder", "hashing:64",
                       "--augment", "off-topic:0.5,truncated:0.2", "--quiet")
    assert code == 0, output
    assert "augmented with 40 off-topic, 16 truncated synthetic pairs" in output
    config = json.loads((model_dir / "config.json").read_text())
    assert config["augment"] == "off-topic:0.5,truncated:0.2"
    assert config["train"]["augment"]["added"] == {"off-topic": 40, "truncated": 16}
    code, output = run("train", str(data), "--out", str(tmp_path / "bad"), "--encoder", "hashing:64",
                       "--augment", "off-topic:lots", "--quiet")
    assert code != 0 and "not a number" in output and "Traceback" not in output
    code, output = run("evaluate", str(data), "--model", str(model_dir), "--augment", "off-topic", "--quiet")
    assert code != 0 and "--augment applies to training" in output


def test_evaluate_cv_records_its_augmentation_and_head_params(tmp_path: Path) -> None:
    data = tmp_path / "hh.jsonl"
    data.write_text("".join(demo_lines(60)), encoding="utf-8")
    record = tmp_path / "cv.json"
    code, output = run("evaluate", str(data), "--heads", "bt-linear", "--folds", "2", "--encoder", "hashing:64",
                       "--augment", "padded:0.5", "--head-param", "balance_length=true", "--record", str(record),
                       "--quiet")
    assert code == 0, output
    saved = json.loads(record.read_text())
    assert saved["protocol"]["augment"] == "padded:0.5"
    assert saved["learners"]["bt-linear"]["params"] == {"balance_length": True}
