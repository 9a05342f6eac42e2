"""`train --annotator-weights`, `evaluate --annotator-weights` (CV) and `evaluate --per-annotator`, on a small file
with overlapping labels and the hashing encoder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cli_helpers import run

MAP = "prompt=prompt,a=a,b=b,label=label,annotator=annotator"


@pytest.fixture(scope="module")
def labelled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40 pairs, each labelled by 3 of 6 annotators; ann4 and ann5 answer at random."""
    rng = np.random.default_rng(0)
    rows = []
    for i in range(40):
        good, bad = f"A careful, helpful answer number {i} with details.", f"nope {i}"
        for j in rng.choice(6, size=3, replace=False):
            right = rng.random() < (0.5 if j >= 4 else 0.95)
            first_good = rng.random() < 0.5
            a, b = (good, bad) if first_good else (bad, good)
            rows.append({"prompt": f"question {i}?", "a": a, "b": b, "label": "a" if first_good == right else "b",
                         "annotator": f"ann{j}"})
    path = tmp_path_factory.mktemp("data") / "labels.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_train_with_weights_prints_and_stores_reliabilities(labelled: Path, tmp_path: Path) -> None:
    model_dir = tmp_path / "model"
    code, output = run("train", str(labelled), "--out", str(model_dir), "--head", "bt-linear", "--encoder",
                       "hashing:64", "--map", MAP, "--annotator-weights", "dawid-skene", "--quiet")
    assert code == 0, output
    assert "annotator reliability" in output and "ann5" in output
    config = json.loads((model_dir / "config.json").read_text())
    info = config["train"]["annotator_quality"]
    assert info["method"] == "dawid-skene" and set(info["annotators"]) == {f"ann{j}" for j in range(6)}
    assert config["annotator_weights"] == "dawid-skene"
    careful = min(info["annotators"][f"ann{j}"]["reliability"]["value"] for j in range(4))
    assert careful > max(info["annotators"][f"ann{j}"]["reliability"]["value"] for j in (4, 5))

    record = tmp_path / "eval.json"
    code, output = run("evaluate", str(labelled), "--model", str(model_dir), "--map", MAP, "--per-annotator",
                       "--record", str(record), "--quiet")
    assert code == 0, output
    assert "accuracy per annotator" in output and "worst:" in output and "macro" in output
    per = json.loads(record.read_text())["per_annotator"]["model"]
    assert set(per["annotators"]) == {f"ann{j}" for j in range(6)} and per["pooled"]["n"] == 120

    code, output = run("evaluate", str(labelled), "--model", str(model_dir), "--map", MAP, "--annotator-weights",
                       "agreement", "--quiet")
    assert code != 0 and "--annotator-weights applies to training" in output


def test_default_is_unweighted_and_unknown_method_fails(labelled: Path, tmp_path: Path) -> None:
    code, output = run("train", str(labelled), "--out", str(tmp_path / "plain"), "--head", "bt-linear", "--encoder",
                       "hashing:64", "--map", MAP, "--quiet")
    assert code == 0 and "annotator reliability" not in output, output
    config = json.loads((tmp_path / "plain" / "config.json").read_text())
    assert "annotator_quality" not in config["train"] and "annotator_weights" not in config
    code, output = run("train", str(labelled), "--out", str(tmp_path / "bad"), "--head", "bt-linear", "--encoder",
                       "hashing:64", "--map", MAP, "--annotator-weights", "majority", "--quiet")
    assert code != 0 and "majority" in output


def test_crossval_with_weights_and_per_annotator(labelled: Path, tmp_path: Path) -> None:
    record = tmp_path / "cv.json"
    code, output = run("evaluate", str(labelled), "--heads", "bt-linear", "--folds", "2", "--encoder", "hashing:64",
                       "--map", MAP, "--annotator-weights", "agreement", "--per-annotator", "--record", str(record),
                       "--quiet")
    assert code == 0, output
    payload = json.loads(record.read_text())
    assert payload["annotator_weights"] == "agreement" and "bt-linear" in payload["per_annotator"]
    assert "worst:" in output


def test_agreement_prints_reliabilities_beside_agreement(labelled: Path, tmp_path: Path) -> None:
    """The estimated reliabilities (with CIs) next to the agreement statistics, on feedback such as an export."""
    from rewardlab.data.parquet import write_parquet
    from rewardlab.data.source import load_source

    export = write_parquet(load_source(labelled, mapping=MAP), tmp_path / "export")
    code, output = run("agreement", str(export), "--reliability", "dawid-skene")
    assert code == 0, output
    assert "Krippendorff" in output and "annotator reliability" in output
    table = output[output.index("annotator reliability"):]
    assert table.index("ann4") < table.index("ann0") and table.index("ann5") < table.index("ann0")  # least first
    code, output = run("agreement", str(export), "--reliability", "dawid-skene", "--json")
    result = json.loads(output)
    reliable = result["reliability"]["annotators"]
    assert reliable["ann0"]["reliability"]["value"] > reliable["ann5"]["reliability"]["value"] + 0.2
    code, output = run("agreement", str(labelled), "--map", "item=prompt,annotator=annotator,label=label",
                       "--reliability", "agreement")
    assert code == 2 and "leave out --map" in output
