"""`rewardlab bon`: live best-of-n — sample from a generator, score with a reward model, keep one per prompt."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from rewardlab.cli import app
from rewardlab.data import Comparison, FeedbackDataset
from rewardlab.optimize.selection import conservative_scores
from rewardlab.optimize.trl_rewards import reward_prompt_text
from rewardlab.rewards.model import RewardModel

runner = CliRunner()


def _train(tmp_path: Path, ensemble: int = 0) -> Path:
    """A hashing-encoder reward model that prefers answers mentioning Paris."""
    data = FeedbackDataset("paris")
    for i in range(40):
        pid = data.add_prompt(f"question {i}: where is the capital of France?")
        good = data.add_response(pid, f"Paris is the capital {i}")
        bad = data.add_response(pid, f"the quick brown fox {i}")
        data.add(Comparison(pid, good, bad, "a"))
    model = RewardModel.create("bt-linear", encoder="hashing:64", ensemble=ensemble)
    return model.fit(data).save(tmp_path / f"rm-{ensemble}")


def _prompts(tmp_path: Path) -> Path:
    path = tmp_path / "prompts.txt"
    path.write_text("What is the capital of France?\nWrite a poem\nhello there\n", encoding="utf-8")
    return path


def test_bon_keeps_the_highest_scored_sample(tiny_model: Path, tmp_path: Path) -> None:
    rm_dir = _train(tmp_path)
    out = tmp_path / "bon.jsonl"
    args = ["bon", str(_prompts(tmp_path)), "--reward-model", str(rm_dir), "--n", "4", "--model", str(tiny_model),
            "--max-new-tokens", "8", "--batch-size", "2", "--out", str(out), "--quiet"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["prompt"] for r in rows] == ["What is the capital of France?", "Write a poem", "hello there"]
    rm = RewardModel.load(rm_dir)
    for row in rows:
        texts = [c["text"] for c in row["candidates"]]
        rewards = np.array([c["reward"] for c in row["candidates"]])
        assert len(texts) == 4 and row["response"] == texts[row["index"]]
        assert row["index"] == int(np.argmax(rewards)) and row["strategy"] == "argmax"
        # the recorded rewards are the reward model's own scores of (prompt, candidate)
        np.testing.assert_allclose(rewards, rm.score([row["prompt"]] * 4, texts), rtol=1e-5, atol=1e-6)
    first = out.read_bytes()
    assert runner.invoke(app, args).exit_code == 0 and out.read_bytes() == first  # seeded end to end


def test_bon_soft_and_conservative(tiny_model: Path, tmp_path: Path) -> None:
    prompts = _prompts(tmp_path)
    common = ["--n", "3", "--model", str(tiny_model), "--max-new-tokens", "6", "--quiet"]
    out = tmp_path / "soft.jsonl"
    result = runner.invoke(app, ["bon", str(prompts), "--reward-model", str(_train(tmp_path)), "--strategy", "soft",
                                 "--soft-temperature", "0.5", "--out", str(out), *common])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert all(0 <= r["kl_to_uniform"] <= np.log(3) + 1e-9 for r in rows)

    single = runner.invoke(app, ["bon", str(prompts), "--reward-model", str(_train(tmp_path)), "--strategy",
                                 "conservative", "--out", str(tmp_path / "x.jsonl"), *common])
    assert single.exit_code != 0 and "ensemble" in single.output

    ensemble_dir = _train(tmp_path, ensemble=3)
    out = tmp_path / "conservative.jsonl"
    result = runner.invoke(app, ["bon", str(prompts), "--reward-model", str(ensemble_dir), "--strategy", "conservative",
                                 "--aggregate", "min", "--out", str(out), *common])
    assert result.exit_code == 0, result.output
    rm = RewardModel.load(ensemble_dir)
    for row in (json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()):
        texts = [c["text"] for c in row["candidates"]]
        members = rm.head.predict_members(rm.featurize([row["prompt"]] * len(texts), texts))
        assert row["index"] == int(np.argmax(conservative_scores(members, "min"))) and "reward_std" in row


def test_bon_against_a_server(tiny_server: str, tmp_path: Path) -> None:
    out = tmp_path / "bon.jsonl"
    result = runner.invoke(app, ["bon", str(_prompts(tmp_path)), "--reward-model", str(_train(tmp_path)), "--n", "2",
                                 "--base-url", tiny_server, "--model-name", "tiny", "--max-new-tokens", "4",
                                 "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 3 and all(r["source"] == "openai:tiny" and len(r["candidates"]) == 2 for r in rows)


def test_bon_rejects_a_base_url_that_is_not_http(tmp_path: Path) -> None:
    result = runner.invoke(app, ["bon", str(_prompts(tmp_path)), "--reward-model", str(_train(tmp_path)),
                                 "--base-url", "ftp://x", "--model-name", "m", "--quiet"])
    assert result.exit_code == 2 and "--base-url must be an http(s) URL" in result.output


def test_hh_prompt_format() -> None:
    assert reward_prompt_text("steal a car?", "hh") == "\n\nHuman: steal a car?"
    dialogue = "\n\nHuman: hi\n\nAssistant: yo\n\nHuman: and?"
    assert reward_prompt_text(dialogue, "hh") == dialogue and reward_prompt_text(dialogue, "last-user") == "and?"
    assert reward_prompt_text("x", "last-user") == "x"


def test_dialogue_prompts_reach_the_model_as_chat_turns() -> None:
    from rewardlab.generate.base import SamplingParams
    from rewardlab.generate.candidates import generate_candidates

    seen: list = []

    class Recorder:
        id = "recorder"

        def generate(self, prompts, n=1, **_):  # type: ignore[no-untyped-def]
            seen.extend(prompts)
            return [["ok"] * n for _ in prompts]

    dialogue = "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: and now?"
    sets = list(generate_candidates(Recorder(), [dialogue, "plain"], SamplingParams(n=2)))
    assert seen[0] == [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"},
                       {"role": "user", "content": "and now?"}]
    assert seen[1] == "plain" and sets[0].prompt == dialogue


def test_live_best_of_n_progress_moves_per_prompt(tiny_model: Path, tiny_server: str, tmp_path: Path) -> None:
    """`bon` sat at 0/N until a batch (all 8 README prompts) was sampled: now each prompt counts, locally or served."""
    from rewardlab.generate.base import SamplingParams
    from rewardlab.generate.local import LocalGenerator
    from rewardlab.generate.openai_client import OpenAIGenerator
    from rewardlab.optimize.live_best_of_n import live_best_of_n

    rm = RewardModel.load(_train(tmp_path))
    prompts = ["What is the capital of France?", "Write a poem", "hello there"]
    for generator in (LocalGenerator(tiny_model, batch_size=1), OpenAIGenerator("tiny", tiny_server, max_retries=0)):
        progress: list[tuple[int, int]] = []
        picks = list(live_best_of_n(generator, rm, prompts, SamplingParams(n=2, max_new_tokens=4), batch_size=8,
                                    on_progress=lambda done, total, seen=progress: seen.append((done, total))))
        assert len(picks) == 3 and {(1, 3), (2, 3), (3, 3)} <= set(progress), progress
