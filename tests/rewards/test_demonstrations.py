"""Rewards from demonstrations: reading samples, the discriminator's dataset, and that it learns the contrast."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rewardlab.errors import DataError, ModelError
from rewardlab.rewards.demonstrations import Sample, discriminator_dataset, read_samples, train_demonstration_reward


def test_read_samples_takes_pairs_and_candidate_sets(tmp_path: Path) -> None:
    path = tmp_path / "mixed.jsonl"
    rows = [{"prompt": "p1", "response": "r1"},
            {"prompt": "p2", "responses": [{"text": "a", "source": "local:x"}, "b"]}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    assert read_samples(path, "demo") == [Sample("p1", "r1", "demo"), Sample("p2", "a", "local:x"), Sample("p2", "b", "demo")]


@pytest.mark.parametrize(("row", "field"), [({"prompt": "p"}, "response"), ({"prompt": "p", "response": ""}, "response"),
                                            ({"prompt": "p", "responses": [{"text": None}]}, "responses[0]"),
                                            ({"response": "r"}, "prompt")])
def test_read_samples_names_the_bad_row_and_field(tmp_path: Path, row: dict, field: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"prompt": "ok", "response": "ok"}) + "\n" + json.dumps(row) + "\n", encoding="utf-8")
    with pytest.raises(DataError) as info:
        read_samples(path)
    assert "row 2" in str(info.value) and field in str(info.value)


def test_discriminator_dataset_labels_both_sides_and_keeps_shared_texts() -> None:
    positives = [Sample("p", "the answer", "demonstration"), Sample("q", "same text")]
    negatives = [Sample("p", "a sample"), Sample("q", "same text")]
    data = discriminator_dataset(positives, negatives)
    assert sorted(lab.correct for lab in data.labels) == [False, False, True, True]
    assert len(data.demonstrations) == 2 and len(data.prompts) == 2
    shared = [lab for lab in data.labels if data.responses[lab.response_id].text == "same text"]
    assert sorted(lab.correct for lab in shared) == [False, True]  # both labels kept: an honest 50/50
    with pytest.raises(ModelError):
        discriminator_dataset(positives, [])


def test_the_discriminator_reward_ranks_held_out_demonstration_like_answers_higher() -> None:
    rng = np.random.default_rng(0)
    words = ["apple", "river", "stone", "cloud", "green", "table", "music", "light"]
    def text(polite: bool, i: int) -> str:
        body = " ".join(rng.choice(words, 6))
        return f"I'm sorry, I can't help with that {body} {i}" if polite else f"sure here is how {body} {i}"
    positives = [Sample(f"prompt {i}", text(True, i)) for i in range(60)]
    negatives = [Sample(f"prompt {i}", text(False, i)) for i in range(60)]
    model = train_demonstration_reward(positives, negatives, "outcome-logistic", encoder="hashing:256")
    test_prompts = [f"new prompt {i}" for i in range(20)]
    good = model.score(test_prompts, [text(True, 100 + i) for i in range(20)])
    bad = model.score(test_prompts, [text(False, 100 + i) for i in range(20)])
    assert (good > bad).mean() >= 0.9
    assert model.train_info["demonstration_reward"] == {"positives": 60, "negatives": 60}


def test_only_label_heads_can_be_discriminators() -> None:
    with pytest.raises(ModelError, match="outcome-logistic"):
        train_demonstration_reward([Sample("p", "a")], [Sample("p", "b")], "bt-mlp", encoder="hashing:16")
