"""Candidate-set readers on the real shared data, the generic JSONL round trip and its bad-input errors."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from rewardlab.data.candidates import (
    CandidateSet,
    candidates_dataset,
    load_candidates,
    read_alpaca_eval,
    read_candidates_jsonl,
    read_gsm8k_candidates,
    write_candidates_jsonl,
)
from rewardlab.errors import DataError


def test_alpaca_eval_pools(shared_data: Path) -> None:
    with pytest.warns(UserWarning, match="skipped 80 exact repeats"):
        sets = read_alpaca_eval(shared_data / "alpaca-eval-weighted-gpt4-turbo", limit=40)
    assert len(sets) == 40
    for s in sets:
        assert 55 <= len(s) <= 58 and s.gold is not None and s.sources is not None
        assert np.all((s.gold >= 1) & (s.gold <= 2))
        assert len(set(s.sources)) == len(s)  # results folders name candidates uniquely
    smaller = sets[0].without_sources({"NullModel", "not-a-model"})
    assert len(smaller) == len(sets[0]) - 1 and "NullModel" not in smaller.sources
    assert smaller.gold.tolist() == [g for g, m in zip(sets[0].gold, sets[0].sources) if m != "NullModel"]
    # the first row of the file
    assert sets[0].prompt.startswith("What are the names of some famous actors")
    assert sets[0].sources[0] == "FuseChat-Gemma-2-9B-Instruct"


def test_gsm8k_pools(shared_data: Path) -> None:
    sets = read_gsm8k_candidates(shared_data / "gsm8k" / "example_model_solutions.jsonl.gz", limit=25)
    assert len(sets) == 25
    assert all(len(s) == 4 and set(np.unique(s.gold)) <= {0.0, 1.0} for s in sets)
    assert sets[0].sources == ("6b_finetuning", "6b_verification", "175b_finetuning", "175b_verification")
    assert sets[0].gold[0] == 0.0  # the sample row in SOURCE.md: 6b_finetuning is wrong


def test_load_candidates_by_name(shared_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REWARDLAB_DATA_DIR", str(shared_data))
    assert len(load_candidates("gsm8k", limit=3)) == 3
    with pytest.raises(DataError, match="not a file"):
        load_candidates("no-such-source")


def test_jsonl_round_trip(tmp_path: Path) -> None:
    sets = [CandidateSet("Why?", ("Because.", "", "No idea"), np.array([2.0, 0.0, 1.0]), ("m1", "m2", "m3")),
            CandidateSet("How?", ("Like this.", "Like that."))]
    path = write_candidates_jsonl(sets, tmp_path / "c.jsonl")
    back = read_candidates_jsonl(path)
    assert [s.prompt for s in back] == ["Why?", "How?"]
    assert back[0].responses == ("Because.", "", "No idea")  # an empty output is a candidate, kept
    assert np.array_equal(back[0].gold, [2.0, 0.0, 1.0]) and back[0].sources == ("m1", "m2", "m3")
    assert back[1].gold is None and back[1].sources is None
    dataset = candidates_dataset(back)
    assert len(dataset.prompts) == 2 and len(dataset.responses) == 5


def test_jsonl_response_objects(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl.gz"
    with gzip.open(path, "wt") as f:
        f.write(json.dumps({"prompt": "Q", "responses": [{"text": "a", "gold": 1, "source": "x"},
                                                         {"text": "b", "gold": 0.5, "source": "y"}]}) + "\n")
    (s,) = read_candidates_jsonl(path)
    assert s.responses == ("a", "b") and np.array_equal(s.gold, [1.0, 0.5]) and s.sources == ("x", "y")


@pytest.mark.parametrize(("record", "field"), [
    ({"responses": ["a"]}, "prompt"),
    ({"prompt": "Q", "responses": []}, "responses"),
    ({"prompt": "Q", "responses": ["a", 3]}, "responses[1]"),
    ({"prompt": "Q", "responses": ["a", "b"], "gold": [1]}, "gold"),
    ({"prompt": "Q", "responses": ["a", "b"], "gold": [1, "high"]}, "gold[1]"),
    ({"prompt": "Q", "responses": ["a", "b"], "gold": [1, float("nan")]}, "gold[1]"),
    ({"prompt": "Q", "responses": [{"text": "a", "gold": 1}, {"text": "b"}]}, "responses[1].gold"),
    ({"prompt": "Q", "responses": ["a", "b"], "sources": ["x"]}, "sources"),
])
def test_jsonl_bad_input_names_row_and_field(tmp_path: Path, record: dict, field: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"prompt": "ok", "responses": ["fine"]}) + "\n" + json.dumps(record) + "\n")
    with pytest.raises(DataError) as info:
        read_candidates_jsonl(path)
    assert info.value.row == 2 and info.value.field == field and str(path) in str(info.value)


def test_alpaca_eval_repeat_that_differs_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    rows = [{"instruction": "Q", "output": "x", "preference": 1.5, "results_dir": "m1"},
            {"instruction": "Q", "output": "x", "preference": 1.5, "results_dir": "m1"},
            {"instruction": "Q", "output": "changed", "preference": 1.5, "results_dir": "m1"}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    with pytest.raises(DataError) as info:
        read_alpaca_eval(path)
    assert info.value.row == 3 and info.value.field == "output"


def test_alpaca_eval_bad_preference(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    rows = [{"instruction": "Q", "output": "x", "preference": 1.5, "results_dir": "m1"},
            {"instruction": "Q", "output": "y", "preference": None, "results_dir": "m2"}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    with pytest.raises(DataError) as info:
        read_alpaca_eval(path)
    assert info.value.row == 2 and info.value.field == "preference"
