"""The demonstration-reward study end to end on a tiny model and the hashing encoder: protocol, not accuracy."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from rewardlab.cli import app
from rewardlab.data import FeedbackDataset
from rewardlab.data.hh_rlhf import read_hh_rlhf
from rewardlab.data.types import Comparison
from rewardlab.optimize.sft import SftConfig
from rewardlab.report import write_report
from rewardlab.studies.demo_reward import (
    DemoRewardConfig,
    build_report,
    demonstrations,
    held_out_accuracy,
    held_out_scores,
    run_study,
    training_prompts,
)

runner = CliRunner()


@pytest.fixture
def hh_file(shared_data: Path) -> Path:
    path = shared_data / "hh-rlhf-harmless-base-test" / "test.jsonl.gz"
    if not path.exists():
        pytest.skip("shared HH-RLHF data not present")
    return path


def test_demonstrations_are_the_chosen_side_only(hh_file: Path) -> None:
    train, _ = read_hh_rlhf(hh_file, on_empty="skip").split(by="prompt", test_size=0.5, seed=0)
    subset = training_prompts(train, 40, seed=1)
    demos = demonstrations(subset)
    rejected = {subset.responses[c.b].text for c in subset.comparisons}
    chosen = {subset.responses[c.a].text for c in subset.comparisons}
    assert len(subset.prompts) == 40 and {d.response for d in demos} == chosen
    assert not ({d.response for d in demos} & (rejected - chosen))


def test_study_runs_caches_samples_and_reports_cis(hh_file: Path, tiny_model: Path, tmp_path: Path) -> None:
    config = DemoRewardConfig(data=str(hh_file), train_prompts=24, model=str(tiny_model), max_new_tokens=6, batch_size=8,
                              sft=SftConfig(steps=2, batch_size=4, trainable_layers=1), encoder="hashing:64", bootstrap=100)
    record = run_study(config, tmp_path)
    assert set(record["accuracy"]) == {"bt", "demo-vs-base", "sft-vs-base", "length", "shorter", "length-only"}
    assert set(record["length_audit"]) == {"bt", "demo-vs-base", "sft-vs-base"}
    assert record["length_controls"]["prefer_longer"] == record["accuracy"]["length"]
    assert record["length_controls"]["length_only_fit"] == "training prompts' pairs"
    for estimate in record["accuracy"].values():
        assert estimate["ci_low"] <= estimate["value"] <= estimate["ci_high"] and estimate["n"] == record["data"]["test_pairs"]
    assert record["data"]["train_prompts"] == 24 and record["policy_samples"]["base"]["n"] == 24
    # train and test prompts never overlap
    dataset = read_hh_rlhf(hh_file, on_empty="skip")
    train, test = dataset.split(by="prompt", test_size=0.5, seed=0)
    base = [json.loads(line) for line in (tmp_path / "samples-base.jsonl").read_text(encoding="utf-8").splitlines()]
    assert not {r["prompt"] for r in base} & {p.text for p in test.prompts.values()}
    # a second run reuses the samples and the fine-tuned policy
    stamps = {name: (tmp_path / name).stat().st_mtime_ns for name in ("samples-base.jsonl", "samples-sft.jsonl")}
    again = run_study(config, tmp_path)
    assert {name: (tmp_path / name).stat().st_mtime_ns for name in stamps} == stamps
    assert again["accuracy"] == record["accuracy"]
    path = write_report(build_report(record), tmp_path, record)
    page = path.read_text(encoding="utf-8")
    assert path == tmp_path / "results.md" and "| demo-vs-base |" in page
    assert "| length-only |" in page and "| shorter |" in page and "## Length controls" in page
    assert json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))["accuracy"] == record["accuracy"]


def test_cli_sft_then_train_a_discriminator(tiny_model: Path, tmp_path: Path) -> None:
    demos = tmp_path / "demos.jsonl"
    demos.write_text("\n".join(json.dumps({"prompt": f"\n\nHuman: question {i}?", "response": f"I can't help with {i}."})
                               for i in range(6)) + "\n", encoding="utf-8")
    result = runner.invoke(app, ["demo-reward", "sft", str(demos), "--out", str(tmp_path / "sft"), "--model", str(tiny_model),
                                 "--steps", "2", "--batch-size", "2", "--trainable-layers", "1", "--quiet"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "sft" / "rewardlab_sft.json").exists() and "loss" in result.output

    samples = tmp_path / "base.jsonl"
    samples.write_text("\n".join(json.dumps({"prompt": f"\n\nHuman: question {i}?", "responses": [f"sure, do {i}", "ok"]})
                                 for i in range(6)) + "\n", encoding="utf-8")
    result = runner.invoke(app, ["demo-reward", "train", "--positive", str(demos), "--negative", str(samples),
                                 "--out", str(tmp_path / "rm"), "--encoder", "hashing:64", "--quiet"])
    assert result.exit_code == 0, result.output
    assert "6 positives vs 12 negatives" in result.output and (tmp_path / "rm" / "config.json").exists()

    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"prompt": "x"}) + "\n", encoding="utf-8")
    result = runner.invoke(app, ["demo-reward", "train", "--positive", str(demos), "--negative", str(bad),
                                 "--out", str(tmp_path / "rm2"), "--encoder", "hashing:64", "--quiet"])
    assert result.exit_code != 0 and "row 1" in result.output and "response" in result.output


def test_cli_discriminator_takes_the_device(tmp_path: Path) -> None:
    demos, samples = tmp_path / "demos.jsonl", tmp_path / "base.jsonl"
    demos.write_text("".join(json.dumps({"prompt": f"q {i}?", "response": f"I can't help with {i}."}) + "\n"
                             for i in range(6)), encoding="utf-8")
    samples.write_text("".join(json.dumps({"prompt": f"q {i}?", "responses": [f"sure, do {i}", "ok"]}) + "\n"
                               for i in range(6)), encoding="utf-8")
    base = ["demo-reward", "train", "--positive", str(demos), "--negative", str(samples), "--encoder", "hashing:64",
            "--learner", "outcome-mlp", "--quiet"]
    for name, device in (("default", []), ("cpu", ["--device", "cpu"])):
        result = runner.invoke(app, [*base, "--out", str(tmp_path / name), *device])
        assert result.exit_code == 0, result.output
    weights = [(tmp_path / name / "head" / "head.safetensors").read_bytes() for name in ("default", "cpu")]
    assert weights[0] == weights[1]  # the CPU named is the fit without a device, byte for byte
    if not torch.cuda.is_available():
        result = runner.invoke(app, [*base, "--out", str(tmp_path / "gpu"), "--device", "cuda:3"])
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert result.exit_code != 0 and len(lines) == 1 and "device 'cuda:3'" in lines[0], result.output
        assert not (tmp_path / "gpu").exists()


def test_sampling_resumes_where_an_interrupted_run_stopped(tmp_path: Path) -> None:
    from rewardlab.studies.demo_reward import sample_policy

    calls: list[int] = []

    class Fake:
        id = "fake"

        def generate(self, prompts, n=1, seed=0, **_):  # type: ignore[no-untyped-def]
            calls.append(seed)
            return [[f"answer {p[-1]['content']} seed {seed}"] for p in prompts]

    prompts = [f"\n\nHuman: question {i}" + "?" * i for i in range(10)]
    config = DemoRewardConfig(batch_size=4)
    full = sample_policy(Fake(), prompts, config, tmp_path / "full.jsonl", {"x": 1})
    assert calls == [0, 1, 2] and [s.prompt for s in full] == prompts
    path = tmp_path / "cut.jsonl"
    sample_policy(Fake(), prompts, config, path, {"x": 1})
    path.write_text("".join(path.read_text(encoding="utf-8").splitlines(keepends=True)[:4]), encoding="utf-8")  # killed
    calls.clear()
    assert sample_policy(Fake(), prompts, config, path, {"x": 1}) == full and calls == [1, 2]
    calls.clear()
    assert sample_policy(Fake(), prompts, config, path, {"x": 2}) == full and calls == [0, 1, 2]  # new settings: resample


def test_cli_runs_the_study_with_the_study_defaults_for_what_is_not_given(hh_file: Path, tiny_model: Path,
                                                                          tmp_path: Path) -> None:
    result = runner.invoke(app, ["experiment", "demo-reward", "--data", str(hh_file), "--train-prompts", "16",
                                 "--model", str(tiny_model), "--max-new-tokens", "4", "--sft-steps", "1", "--sft-layers", "1",
                                 "--encoder", "hashing:64", "--seed", "3", "--out", str(tmp_path), "--quiet"])
    assert result.exit_code == 0, result.output
    config = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))["config"]
    defaults = DemoRewardConfig()
    assert config["train_prompts"] == 16 and config["seed"] == 3 and config["sft"]["seed"] == 3
    assert config["sft"]["steps"] == 1 and config["sft"]["batch_size"] == defaults.sft.batch_size
    assert config["learner"] == defaults.learner and config["temperature"] == defaults.temperature
    md = (tmp_path / "results.md").read_text(encoding="utf-8")
    assert "| sft-vs-base |" in md and "## Settings" in md and "| sft.steps | 1 |" in md


def _pairs(name: str, pairs: list[tuple[str, str, str]]) -> FeedbackDataset:
    """One prompt per (a, b, outcome) pair."""
    ds = FeedbackDataset(name)
    for i, (a, b, outcome) in enumerate(pairs):
        p = ds.add_prompt(f"{name} question {i}: {'?' * i}")
        ds.add(Comparison(p, ds.add_response(p, a), ds.add_response(p, b), outcome))  # type: ignore[arg-type]
    return ds


class _ByText:
    """A fake reward model: a fixed function of the response text."""

    def __init__(self, reward) -> None:  # type: ignore[no-untyped-def]
        self.reward = reward

    def score(self, prompts, responses):  # type: ignore[no-untyped-def]
        return np.array([self.reward(r) for r in responses], dtype=float)


def test_length_rows_match_a_hand_computation() -> None:
    # training pairs: the longer side wins 3 of 4, so the length-only head learns "longer wins" (w > 0)
    train = _pairs("train", [("x" * 50, "y" * 5, "a"), ("y" * 5, "x" * 50, "b"), ("x" * 50, "y" * 5, "a"),
                             ("x" * 50, "y" * 5, "b")])
    # held out: the chosen side is longer in pairs 0-1, shorter in 2-3; pair 4 is of equal length; pair 5 a labelled tie
    test = _pairs("test", [("good" * 10, "bad", "a"), ("bad", "good" * 10, "b"), ("good", "bad" * 10, "a"),
                           ("bad" * 10, "good", "b"), ("good", "bad!", "a"), ("tie" * 3, "tie", "tie")])
    models = {"bt": _ByText(len), "demo-vs-base": _ByText(lambda r: r.count("good")),
              "sft-vs-base": _ByText(lambda r: -len(r))}
    out = held_out_accuracy({name: held_out_scores(m, test) for name, m in models.items()},  # type: ignore[arg-type]
                            train, test, draws=200, seed=0)
    assert out["test_pairs"] == 5
    accuracy = {name: e["value"] for name, e in out["accuracy"].items()}
    # per decided pair (0, 1, 2, 3, 4), 1 = right, .5 = a tie in the scores:
    # longer wins [1, 1, 0, 0, .5]; shorter wins [0, 0, 1, 1, .5]; demo-vs-base ("good" counts) [1, 1, 1, 1, 1]
    assert accuracy == pytest.approx({"bt": 0.5, "demo-vs-base": 1.0, "sft-vs-base": 0.5, "length": 0.5,
                                      "shorter": 0.5, "length-only": 0.5})
    controls = out["length_controls"]
    assert controls["length_only_weights"][0] > 0 and controls["length_only"]["value"] == pytest.approx(0.5)
    assert controls["prefer_shorter"]["value"] == pytest.approx(0.5)
    assert (controls["pairs_longer_wins"], controls["pairs_shorter_wins"], controls["pairs_equal_length_excluded"]) == (2, 2, 1)
    audit = out["length_audit"]
    demo = audit["demo-vs-base"]
    assert demo["accuracy_minus_length_only"]["value"] == pytest.approx(0.5)  # 1 − .5, on the same pairs
    assert demo["accuracy_minus_length_only"]["ci_low"] <= 0.5 <= demo["accuracy_minus_length_only"]["ci_high"]
    assert demo["length_balanced_accuracy"]["value"] == pytest.approx(1.0)
    assert audit["bt"]["accuracy_longer_wins"]["value"] == 1.0 and audit["bt"]["accuracy_shorter_wins"]["value"] == 0.0
    assert audit["bt"]["length_balanced_accuracy"]["value"] == pytest.approx(0.5)
    assert audit["bt"]["accuracy_minus_length_only"]["value"] == pytest.approx(0.0)  # bt here *is* "longer wins"
    # ρ(reward, length) over the 12 distinct held-out responses: +1 for length itself, −1 for minus length
    assert audit["bt"]["spearman_reward_length"] == {"value": pytest.approx(1.0), "n_responses": 12, "unit": "characters"}
    assert audit["sft-vs-base"]["spearman_reward_length"]["value"] == pytest.approx(-1.0)
    assert out["minus_bt"]["length-only"]["value"] == pytest.approx(0.0)
    assert out["sft_minus_demo"]["value"] == pytest.approx(-0.5)


def test_report_without_length_rows_renders_as_before() -> None:
    """A record from before the length controls (no length_audit, no shorter / length-only rows) still renders."""
    estimate = {"value": 0.6, "ci_low": 0.5, "ci_high": 0.7, "n": 10}
    record = {
        "config": {"seed": 0, "bootstrap": 100}, "sft_minus_demo": estimate, "timing_seconds": {"total": 1.0},
        "data": {"train_pairs": 8, "demonstrations": 8, "test_pairs": 10, "test_prompts": 10},
        "accuracy": {name: estimate for name in ("bt", "demo-vs-base", "sft-vs-base", "length")},
        "minus_bt": {name: estimate for name in ("demo-vs-base", "sft-vs-base", "length")},
        "policy_samples": {"base": {"n": 8, "mean_chars": 10.0}}, "sft": {},
    }
    from rewardlab.report import render_markdown

    page = render_markdown(build_report(record))
    assert "| length |" in page and "length-only" not in page and "Length controls" not in page
