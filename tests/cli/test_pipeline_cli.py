"""The `rewardlab` command end to end on small data, with the hashing encoder for speed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli_helpers import demo_lines, run


@pytest.fixture(scope="module")
def small_hh(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 300 rows of the bundled HH-RLHF demo file."""
    path = tmp_path_factory.mktemp("data") / "hh300.jsonl"
    path.write_text("".join(demo_lines(300)), encoding="utf-8")
    return path


def test_quickstart_small(tmp_path: Path) -> None:
    code, output = run("quickstart", "--encoder", "hashing:64", "--limit", "300", "--folds", "3",
                       "--runs", str(tmp_path), "--quiet")
    assert code == 0, output
    assert "BT-MLP debiased" in output and "CLF-LightGBM" in output and "ensemble" in output
    (run_dir,) = list(tmp_path.iterdir())
    record = json.loads((run_dir / "record.json").read_text())
    assert record["data"]["summary"]["comparisons"] == 299  # row 87 of the demo has an empty final turn
    assert "87" in record["data"]["notes"][0]
    assert record["protocol"]["k_folds"] == 3
    for learner in record["learners"].values():
        acc = learner["metrics"]["accuracy"]
        assert acc["ci_low"] <= acc["value"] <= acc["ci_high"] and acc["n"] == 299
    assert list(record["learners"])[0] == "BT-MLP debiased"  # the default head, the reference of every Δ
    config = json.loads((run_dir / "model-bt-mlp-debiased" / "config.json").read_text())
    assert config["kind"] == "bt-mlp-debiased" and config["head"]["length_debias"] is True
    code, output = run("score", "--model", str(run_dir / "model-bt-mlp-debiased"), "--prompt", "hi", "--response",
                       "hello")
    assert code == 0 and "score" in json.loads(output.strip().splitlines()[-1])


def test_train_evaluate_score_on_a_file(small_hh: Path, tmp_path: Path) -> None:
    model_dir = tmp_path / "model"
    code, output = run("train", str(small_hh), "--out", str(model_dir), "--head", "clf-mlp", "--ensemble", "3",
                       "--encoder", "hashing:64", "--on-empty", "skip", "--quiet")
    assert code == 0, output
    record = tmp_path / "eval.json"
    code, output = run("evaluate", str(small_hh), "--model", str(model_dir), "--record", str(record),
                       "--on-empty", "skip", "--quiet")
    assert code == 0, output
    assert json.loads(record.read_text())["metrics"]["accuracy"]["n"] == 299  # row 87 has an empty turn
    code, output = run("evaluate", str(small_hh), "--heads", "bt-linear,clf-logistic", "--folds", "3",
                       "--encoder", "hashing:64", "--on-empty", "skip", "--quiet")
    assert code == 0 and "clf-logistic" in output, output
    to_score = tmp_path / "in.jsonl"
    to_score.write_text(json.dumps({"prompt": "Help?", "response": "Sure.", "id": 7}) + "\n", encoding="utf-8")
    scored = tmp_path / "out.jsonl"
    code, output = run("score", "--model", str(model_dir), "--input", str(to_score), "--output", str(scored))
    assert code == 0, output
    row = json.loads(scored.read_text())
    assert row["id"] == 7 and {"reward_mean", "reward_std", "reward_min", "reward_lcb"} <= set(row)


def test_mapped_csv_through_the_cli(tmp_path: Path) -> None:
    csv_path = tmp_path / "pairs.csv"
    rows = ["input,output_1,output_2,label"]
    for i in range(40):
        good, bad = f"kind helpful answer {i}", f"rude answer {i}"
        rows.append(f"question {i},{good},{bad},1" if i % 2 else f"question {i},{bad},{good},2")
    csv_path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    code, output = run("train", str(csv_path), "--out", str(tmp_path / "m"), "--head", "bt-linear",
                       "--encoder", "hashing:64", "--map", "prompt=input,a=output_1,b=output_2,label=label", "--quiet")
    assert code == 0, output
    code, output = run("train", str(csv_path), "--out", str(tmp_path / "m2"), "--encoder", "hashing:64",
                       "--map", "prompt=input,a=output_1,b=output_3,label=label", "--quiet")
    assert code == 2 and "output_3" in output and "output_1" in output and "Traceback" not in output


def test_bad_input_is_one_clean_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "p", "chosen": "a", "rejected": "b"}\n{"prompt": "p", "chosen": \n', encoding="utf-8")
    code, output = run("train", str(bad), "--out", str(tmp_path / "m"), "--encoder", "hashing:64", "--quiet")
    assert code == 2
    assert "bad.jsonl" in output and "row 2" in output and "broken JSON" in output
    assert "Traceback" not in output


def test_unknown_head_and_missing_model(tmp_path: Path, small_hh: Path) -> None:
    code, output = run("train", str(small_hh), "--out", str(tmp_path / "m"), "--head", "nope", "--on-empty", "skip",
                       "--encoder", "hashing:64", "--quiet")
    assert code == 2 and "unknown head kind" in output
    code, output = run("score", "--model", str(tmp_path), "--prompt", "p", "--response", "r")
    assert code == 2 and "config.json" in output


def test_datasets_and_heads_listings() -> None:
    code, output = run("datasets")
    assert code == 0 and "hh-harmless-demo" in output
    code, output = run("heads")
    assert code == 0 and "clf-lgbm" in output and "rating-mlp" in output


def test_embed_texts_to_npy_then_from_the_cache(tmp_path: Path) -> None:
    import numpy as np

    texts = tmp_path / "texts.txt"
    texts.write_text("first text\nsecond text\nfirst text\n", encoding="utf-8")
    code, output = run("embed", "--texts", str(texts), "--encoder", "hashing:64", "--output", str(tmp_path / "v.npy"),
                       "--quiet")
    assert code == 0, output
    assert "3 texts (2 unique)" in output and "hit rate 0%" in output
    vectors = np.load(tmp_path / "v.npy")
    assert vectors.shape == (3, 64) and np.array_equal(vectors[0], vectors[2])
    code, output = run("embed", "--texts", str(texts), "--encoder", "hashing:64", "--quiet")
    assert code == 0 and "hit rate 100%" in output and "0 embedded" in output


def test_embed_a_dataset_and_its_errors(small_hh: Path, tmp_path: Path) -> None:
    code, output = run("embed", str(small_hh), "--encoder", "hashing:64", "--on-empty", "skip", "--quiet")
    assert code == 0, output
    assert "with hashing:64" in output
    blank = tmp_path / "blank.txt"
    blank.write_text("one\n\nthree\n", encoding="utf-8")
    code, output = run("embed", "--texts", str(blank), "--encoder", "hashing:64")
    assert code == 2 and "blank.txt" in output and "row 2: blank line" in output
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"text": "a"}\n{"body": "b"}\n', encoding="utf-8")
    code, output = run("embed", "--texts", str(rows), "--encoder", "hashing:64")
    assert code == 2 and "row 2" in output and "text" in output
    code, output = run("embed", "--encoder", "hashing:64")
    assert code == 2 and "either DATA" in output
    code, output = run("embed", str(small_hh), "--texts", str(blank))
    assert code == 2


def test_encoders_listing() -> None:
    code, output = run("encoders")
    assert code == 0 and "minilm:int8" in output and "hf-last" in output and "default: minilm:int8" in output


def test_simulate_train_bon_eval_select(tmp_path: Path) -> None:
    """Candidates with gold → simulated labels → a reward model → its best-of-n against gold, and its picks."""
    import numpy as np

    from rewardlab.data.candidates import CandidateSet, write_candidates_jsonl

    rng = np.random.default_rng(0)
    quality = ["superb", "good", "okay", "weak", "awful", "useless"]
    sets = []
    for i in range(80):
        order = rng.permutation(len(quality))
        sets.append(CandidateSet(f"task {i}", tuple(f"{quality[k]} answer to task {i}" for k in order),
                                 np.array([-float(k) for k in order]), tuple(quality[k] for k in order)))
    candidates = write_candidates_jsonl(sets, tmp_path / "cands.jsonl")
    code, output = run("simulate", str(candidates), "--output", str(tmp_path / "sim"), "--pairs", "2000",
                       "--beta", "3", "--seed", "1")
    assert code == 0, output
    assert "2000 same-prompt comparisons" in output and "agree with gold" in output
    code, output = run("train", str(tmp_path / "sim"), "--head", "bt-linear", "--encoder", "hashing:256",
                       "--features", "response", "--ensemble", "3", "--out", str(tmp_path / "model"), "--quiet")
    assert code == 0, output
    code, output = run("bon-eval", str(tmp_path / "model"), str(candidates), "--n", "1,2,max",
                       "--record", str(tmp_path / "bon.json"), "--quiet")
    assert code == 0, output
    record = json.loads((tmp_path / "bon.json").read_text())
    assert record["metrics"]["max"]["gold"]["value"] > -0.5  # the oracle gets 0, a random pick -2.5
    assert record["metrics"]["max"]["oracle_gain_fraction"]["value"] > 0.8
    assert record["metrics"]["all"]["spearman"]["value"] > 0.8
    for strategy in ("argmax", "soft", "conservative"):
        code, output = run("select", str(tmp_path / "model"), str(candidates), "--strategy", strategy,
                           "--output", str(tmp_path / f"{strategy}.jsonl"), "--temperature", "0.5", "--quiet")
        assert code == 0, output
        picks = [json.loads(line) for line in (tmp_path / f"{strategy}.jsonl").read_text().splitlines()]
        assert len(picks) == 80 and all("gold" in p for p in picks)
        if strategy == "soft":
            assert all(0 <= p["kl_to_uniform"] <= np.log(6) + 1e-9 for p in picks)
    code, output = run("bon-eval", str(tmp_path / "model"), str(candidates), "--exclude-sources", "superb",
                       "--record", str(tmp_path / "bon5.json"), "--quiet")
    assert code == 0, output
    without_best = json.loads((tmp_path / "bon5.json").read_text())["metrics"]
    assert without_best["max"]["oracle"]["value"] == -1.0 and without_best["1"]["gold"]["value"] == pytest.approx(-3.0)
    code, output = run("bon-eval", str(tmp_path / "model"), str(candidates), "--n", "0")
    assert code == 2 and "positive integers" in output


def test_prompt_opt_train_and_select_on_own_logs(tmp_path: Path) -> None:
    """Bring-your-own logs: 'Show work.' solves arithmetic, 'Answer:' solves trivia; selection follows the query."""
    rows = []
    for i in range(60):
        rows.append({"query": f"what is {i} plus {i + 3}", "prompt": "Show work.", "correct": 1})
        rows.append({"query": f"what is {i} plus {i + 3}", "prompt": "Answer:", "correct": 0})
        rows.append({"query": f"who wrote book number {i}", "prompt": "Show work.", "correct": 0})
        rows.append({"query": f"who wrote book number {i}", "prompt": "Answer:", "correct": 1})
    logs = tmp_path / "logs.jsonl"
    logs.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    code, output = run("prompt-opt", "train", str(logs), "--out", str(tmp_path / "pm"), "--encoder", "hashing:256",
                       "--quiet")
    assert code == 0, output
    assert "tuned k=" in output and json.loads((tmp_path / "pm" / "config.json").read_text())["fit_log"]["knn_tuning"]
    assert "per-query selection 1.000, best single prompt 0.4" in output and "no query-dependent signal" not in output
    queries = tmp_path / "q.txt"
    queries.write_text("what is 100 plus 103\nwho wrote book number 100\n")
    code, output = run("prompt-opt", "select", str(tmp_path / "pm"), "--queries", str(queries), "--output",
                       str(tmp_path / "picks.jsonl"))
    assert code == 0, output
    picks = [json.loads(line) for line in (tmp_path / "picks.jsonl").read_text().splitlines()]
    assert [p["prompt"] for p in picks] == ["Show work.", "Answer:"]
    flat = [{**r, "correct": int(r["prompt"] == "Answer:")} for r in rows]  # one prompt wins everywhere
    logs.write_text("\n".join(json.dumps(r) for r in flat) + "\n")
    code, output = run("prompt-opt", "train", str(logs), "--out", str(tmp_path / "flat"), "--encoder", "hashing:256",
                       "--quiet")
    assert code == 0 and "(gain +0.000 ±" in output and "no query-dependent signal" in output, output
    assert "query-agnostic" in output and json.loads((tmp_path / "flat" / "config.json").read_text())["query_agnostic"]
    code, output = run("prompt-opt", "train", str(tmp_path / "missing.jsonl"), "--out", str(tmp_path / "x"))
    assert code == 2 and "missing.jsonl" in output


def test_embed_prefills_the_cache_for_joint_features(small_hh: Path, tmp_path: Path) -> None:
    from rewardlab.data.load import load_feedback
    from rewardlab.embed import make_encoder
    from rewardlab.rewards.features import featurize_dataset

    cache = tmp_path / "cache"
    code, output = run("embed", str(small_hh), "--encoder", "hashing:64", "--features", "joint", "--on-empty", "skip",
                       "--cache-dir", str(cache), "--quiet")
    assert code == 0, output
    dataset = load_feedback(small_hh, on_empty="skip")
    _, stats = featurize_dataset(dataset, make_encoder("hashing:64"), "joint", cache_dir=cache)
    assert stats.misses == 0 and stats.hits > 0  # training with joint features starts warm
    code, output = run("embed", str(small_hh), "--encoder", "hashing:64", "--features", "bogus", "--on-empty", "skip")
    assert code == 2 and "unknown feature mode 'bogus'" in output
