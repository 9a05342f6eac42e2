"""GRPO and on-policy DPO through the real TRL trainers on a tiny GPT-2; the KL estimate; prompt handling."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from rewardlab.cli import app
from rewardlab.optimize.policy import PolicyRunConfig, PolicyRunResult, run_dpo, run_grpo
from rewardlab.optimize.policy_eval import PolicySampler, Samples, estimate_kl, sequence_logprobs
from rewardlab.optimize.policy_inputs import fit_prompts, load_prompts
from rewardlab.optimize.trl_rewards import PolicyError
from rewardlab.rewards.model import RewardModel
from synthetic import preference_dataset

PROMPTS = ["Write a short poem about the sea", "What is the capital of France?", "hello there",
           "A reward model scores responses", "Numbers like 1 2 3", "The quick brown fox", "Best of n sampling",
           "the lazy dog"]


def tiny_config(model: Path, **overrides: Any) -> PolicyRunConfig:
    settings: dict[str, Any] = {"model": str(model), "steps": 2, "batch_size": 2, "num_generations": 2,
                                "max_prompt_tokens": 48, "max_completion_tokens": 8, "eval_prompts": 3,
                                "eval_samples": 2, "learning_rate": 1e-3}
    return PolicyRunConfig(**{**settings, **overrides})


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A proxy and a gold reward model (hashing encoders), trained on different synthetic pairs."""
    folder = tmp_path_factory.mktemp("reward-models")
    proxy_rows = [(f"question {i}", "the sea is blue and the sky is wide", "no") for i in range(20)]
    gold_rows = [(f"question {i}", "paris is the capital of france", "the fox") for i in range(20)]
    RewardModel.create("bt-linear", encoder="hashing:64").fit(preference_dataset("proxy", proxy_rows)).save(folder / "p")
    RewardModel.create("bt-linear", encoder="hashing:64").fit(preference_dataset("gold", gold_rows)).save(folder / "g")
    return folder / "p", folder / "g"


@pytest.fixture(scope="module")
def grpo_run(tiny_model: Path, models: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> PolicyRunResult:
    rows: list[dict[str, Any]] = []
    result = run_grpo(models[0], PROMPTS, tmp_path_factory.mktemp("grpo"), tiny_config(tiny_model), gold=models[1],
                      on_row=rows.append)
    assert rows == result.rows
    return result


def read_log(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "log.jsonl").read_text(encoding="utf-8").splitlines()]


def test_grpo_logs_every_step_and_summarizes(grpo_run: PolicyRunResult) -> None:
    log = read_log(grpo_run.out)
    assert [row["step"] for row in log] == [0, 1, 2]
    assert log[0]["eval"]["kl"]["value"] == 0.0  # the starting policy is the reference
    for row in log[1:]:
        assert math.isfinite(row["eval"]["kl"]["value"]) and math.isfinite(row["eval"]["proxy"]["value"])
        assert math.isfinite(row["train_reward"]) and "loss" in row["trainer"]
        assert len(row["samples"]) == 3 and all(isinstance(s["completion"], str) for s in row["samples"])
    summary = json.loads((grpo_run.out / "summary.json").read_text(encoding="utf-8"))
    assert summary["method"] == "grpo" and summary["steps"] == 2
    assert summary["prompts"] == {"train": 5, "eval": 3, "too_long": 0}
    for key in ("proxy", "gold", "kl"):
        part = summary[key]
        assert part["end"]["n"] == 6 and part["end"]["ci_low"] <= part["end"]["value"] <= part["end"]["ci_high"]
        assert math.isclose(part["change"]["value"], part["end"]["value"] - part["start"]["value"], abs_tol=1e-9)
    assert summary["kl"]["end"]["value"] != 0.0  # the policy moved


def test_grpo_saves_a_policy_the_local_generator_loads(grpo_run: PolicyRunResult) -> None:
    from rewardlab.generate.local import LocalGenerator

    texts = LocalGenerator(grpo_run.out / "policy").generate(["hello there"], n=2, max_new_tokens=4)
    assert len(texts[0]) == 2


def test_dpo_labels_pairs_from_the_policy_then_trains(tiny_model: Path, models: tuple[Path, Path], tmp_path: Path) -> None:
    result = run_dpo(models[0], PROMPTS, tmp_path, tiny_config(tiny_model, eval_every=2))
    log = read_log(tmp_path)
    assert [row["step"] for row in log] == [0, 1, 2]
    assert "eval" not in log[1] and "loss" in log[1]["trainer"]  # evaluated every 2 steps, logged every step
    assert math.isfinite(log[2]["eval"]["kl"]["value"])
    pairs = result.summary["pairs"]
    assert pairs["labelled"] + pairs["skipped"] == 4  # steps × batch_size prompts were labelled
    rows = [json.loads(line) for line in (tmp_path / "pairs.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(rows) == pairs["labelled"] and all(r["chosen_reward"] > r["rejected_reward"] for r in rows)
    assert "gold" not in result.summary and (tmp_path / "policy" / "config.json").exists()


def test_kl_estimate_of_a_policy_against_itself_is_zero(tiny_model: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    kl = estimate_kl(model, copy.deepcopy(model), tokenizer, PROMPTS[:3], n=2, max_new_tokens=6)
    assert kl.shape == (6,) and np.all(kl == 0.0)
    other = copy.deepcopy(model)
    with torch.no_grad():
        for parameter in other.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    assert np.abs(estimate_kl(model, other, tokenizer, PROMPTS[:3], n=2, max_new_tokens=6)).sum() > 0


def test_log_probabilities_do_not_depend_on_padding(tiny_model: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32)
    sampler = PolicySampler(model, AutoTokenizer.from_pretrained(tiny_model))
    samples = sampler.sample(["hi", "What is the capital of France? Tell me more please", "sea"], n=2, max_new_tokens=7)
    batched = sequence_logprobs(model, samples, sampler.pad_id, batch_size=6)
    alone = [sequence_logprobs(model, Samples([0], [p], [c], [t]), sampler.pad_id)[0]
             for p, c, t in zip(samples.prompt_ids, samples.completion_ids, samples.texts)]
    assert np.allclose(batched, alone, atol=1e-4) and np.all(batched < 0)


def test_long_dialogues_lose_early_turns_and_unfittable_prompts_are_counted(tiny_model: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    sampler = PolicySampler(AutoModelForCausalLM.from_pretrained(tiny_model), AutoTokenizer.from_pretrained(tiny_model))
    long_turn = "the quick brown fox jumps over the lazy dog " * 3
    dialogue = [{"role": "user", "content": long_turn}, {"role": "assistant", "content": long_turn},
                {"role": "user", "content": "hello there"}]
    kept, too_long = fit_prompts(["hello", dialogue, long_turn * 4], sampler, max_tokens=40)
    assert too_long == 1
    assert kept == [[{"role": "user", "content": "hello"}], [{"role": "user", "content": "hello there"}]]


def test_prompts_from_text_records_and_hh_files(tmp_path: Path) -> None:
    txt = tmp_path / "p.txt"
    txt.write_text("one\ntwo\n", encoding="utf-8")
    assert load_prompts(txt) == [[{"role": "user", "content": "one"}], [{"role": "user", "content": "two"}]]
    records = tmp_path / "p.jsonl"
    records.write_text(json.dumps({"q": "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: bye"}) + "\n", encoding="utf-8")
    assert load_prompts(records, field="q") == [[{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"},
                                                 {"role": "user", "content": "bye"}]]
    hh = tmp_path / "hh.jsonl"
    hh.write_text(json.dumps({"chosen": "\n\nHuman: hi\n\nAssistant: good", "rejected": "\n\nHuman: hi\n\nAssistant: bad"})
                  + "\n", encoding="utf-8")
    assert load_prompts(hh) == [[{"role": "user", "content": "hi"}]]


def test_few_prompts_shrink_the_eval_set_with_a_warning() -> None:
    """The README's `policy dpo --prompts prompts.txt` with 4 prompts must not stop at the 16 default eval prompts."""
    from rewardlab.optimize.policy import eval_split

    assert eval_split(100, 16, 4) == 16  # enough prompts: exactly what was asked
    assert eval_split(20, 16, 4) == 16
    with pytest.warns(UserWarning, match=r"2 are held out for evaluation instead of eval_prompts=16, 2 are trained on"):
        assert eval_split(4, 16, 1, "dpo") == 2
    with pytest.warns(UserWarning, match="1 are held out"):
        assert eval_split(3, 3, 2, "grpo") == 1
    with pytest.raises(PolicyError, match="lower --batch-size"):
        eval_split(4, 16, 4, "grpo")
    with pytest.raises(PolicyError, match="needs at least 1 to train on and 1 to evaluate"):
        eval_split(1, 16, 1, "dpo")


def test_too_few_prompts_is_a_clear_error(tiny_model: Path, models: tuple[Path, Path], tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="grpo needs at least 2 to train on and 1 to evaluate"):
        run_grpo(models[0], PROMPTS[:2], tmp_path, tiny_config(tiny_model))
    with pytest.raises(PolicyError, match="num_generations must be at least 2"):
        run_grpo(models[0], PROMPTS, tmp_path, tiny_config(tiny_model, num_generations=1))


def test_cli_grpo(tiny_model: Path, models: tuple[Path, Path], tmp_path: Path) -> None:
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("\n".join(PROMPTS) + "\n", encoding="utf-8")
    out = tmp_path / "run"
    result = CliRunner().invoke(app, [
        "policy", "grpo", "--reward-model", str(models[0]), "--gold-model", str(models[1]), "--prompts", str(prompts),
        "--model", str(tiny_model), "--out", str(out), "--steps", "1", "--batch-size", "2", "--generations", "2",
        "--max-prompt-tokens", "48", "--max-completion-tokens", "6", "--eval-prompts", "2", "--lr", "1e-3", "--quiet"])
    assert result.exit_code == 0, result.output
    assert "KL(π‖π_ref)" in result.output and "gold reward (held out)" in result.output
    assert (out / "summary.json").exists() and len(read_log(out)) == 2
    missing = CliRunner().invoke(app, ["policy", "dpo", "--reward-model", str(tmp_path / "nope"), "--prompts", str(prompts),
                                       "--model", str(tiny_model), "--out", str(out), "--quiet"])
    assert missing.exit_code == 2 and "not a rewardlab reward model" in missing.output


@pytest.mark.slow
def test_smollm2_gguf_becomes_a_plain_trainable_folder(tmp_path: Path) -> None:
    """TRL loads GRPO's reference from the policy's folder, so the de-quantised GGUF must be one."""
    from rewardlab.generate.base import GenerationError
    from rewardlab.generate.local import default_model_path
    from rewardlab.optimize.policy_inputs import load_policy

    try:
        default_model_path()
    except GenerationError as exc:
        pytest.skip(str(exc))
    model, tokenizer, name = load_policy(None, None, tmp_path)
    assert name.endswith(".gguf") and Path(model.config._name_or_path) == tmp_path / "initial-policy"
    assert getattr(model, "hf_quantizer", None) is None
    assert "quantization_config" not in json.loads((tmp_path / "initial-policy" / "config.json").read_text())
    sampler = PolicySampler(model, tokenizer)
    samples = sampler.sample(["What is the capital of France?"], n=2, max_new_tokens=6)
    assert all(t.strip() for t in samples.texts)
    assert np.all(sequence_logprobs(model, samples, sampler.pad_id) < 0)
