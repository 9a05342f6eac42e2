"""`bon-eval` shows, on the same pools and n, what picking the longest or the shortest candidate would get."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cli_helpers import run
from rewardlab.data.candidates import CandidateSet, write_candidates_jsonl


def test_bon_eval_prints_and_records_the_length_rules(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    quality = ["superb", "good", "okay", "weak", "awful"]
    sets = []
    for i in range(40):  # the longer answers are the worse ones: "pick the shortest" is the length rule to beat
        order = rng.permutation(len(quality))
        sets.append(CandidateSet(f"task {i}", tuple(f"{quality[k]} answer to task {i}" + " and so on" * k
                                                    for k in order), np.array([-float(k) for k in order])))
    candidates = write_candidates_jsonl(sets, tmp_path / "cands.jsonl")
    code, output = run("simulate", str(candidates), "--output", str(tmp_path / "sim"), "--pairs", "600",
                       "--beta", "3", "--seed", "1")
    assert code == 0, output
    code, output = run("train", str(tmp_path / "sim"), "--head", "bt-linear", "--encoder", "hashing:256",
                       "--features", "response", "--out", str(tmp_path / "model"), "--quiet")
    assert code == 0, output
    code, output = run("bon-eval", str(tmp_path / "model"), str(candidates), "--n", "1,2,max",
                       "--record", str(tmp_path / "bon.json"), "--quiet")
    assert code == 0, output
    assert "pick longest" in output and "vs shortest" in output and "Spearman(reward, characters)" in output
    record = json.loads((tmp_path / "bon.json").read_text())
    controls = record["length_controls"]
    assert controls["unit"] == "characters" and set(controls["n"]) == {"1", "2", "max"}
    top = controls["n"]["max"]
    assert top["longest"]["value"] == pytest.approx(-4.0) and top["shortest"]["value"] == pytest.approx(0.0)
    assert top["better_rule"] == "shortest"
    assert top["gold"] == record["metrics"]["max"]["gold"]
    assert top["gold_minus_better_rule"]["value"] == pytest.approx(record["metrics"]["max"]["gold"]["value"])
    assert controls["spearman_reward_length"]["value"] < 0  # the model learned quality, which here is shortness
