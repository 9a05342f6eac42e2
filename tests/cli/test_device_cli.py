"""`--device` on the command line: one clear line (not a traceback) for a GPU that is not here or a malformed spec,
and the same vectors with --device cpu and auto on a machine without a GPU."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from rewardlab.cli import app

runner = CliRunner()


@pytest.fixture
def texts(tmp_path: Path) -> Path:
    path = tmp_path / "texts.txt"
    path.write_text("a helpful answer\na rude answer\nanother text\n", encoding="utf-8")
    return path


def _error_line(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    assert "Traceback" not in output and len(lines) == 1, output
    return lines[0]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without a GPU")
@pytest.mark.parametrize("device", ["cuda", "cuda:7"])
def test_embed_on_a_missing_gpu_is_one_line(texts: Path, device: str) -> None:
    result = runner.invoke(app, ["embed", "--texts", str(texts), "--encoder", "hashing:32", "--device", device,
                                 "--quiet"], terminal_width=400)
    assert result.exit_code == 2
    line = _error_line(result.output)
    assert line.startswith("error: device") and f"'{device}'" in line and "--device cpu" in line


def test_a_malformed_device_is_one_line(texts: Path) -> None:
    result = runner.invoke(app, ["embed", "--texts", str(texts), "--encoder", "hashing:32", "--device", "gpu",
                                 "--quiet"], terminal_width=400)
    assert result.exit_code == 2
    assert "expected auto, cpu, cuda or cuda:N" in _error_line(result.output)


@pytest.mark.skipif(torch.cuda.is_available(), reason="auto means the GPU on this machine")
def test_cpu_and_auto_give_the_same_vectors_here(texts: Path, tmp_path: Path) -> None:
    for device in ("cpu", "auto"):
        result = runner.invoke(app, ["embed", "--texts", str(texts), "--encoder", "hashing:32", "--device", device,
                                     "--output", str(tmp_path / f"{device}.npy"), "--no-cache", "--quiet"])
        assert result.exit_code == 0, result.output
    assert np.array_equal(np.load(tmp_path / "cpu.npy"), np.load(tmp_path / "auto.npy"))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without a GPU")
def test_generate_on_a_missing_gpu_is_one_line(tiny_model: Path, tmp_path: Path) -> None:
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("hello\n", encoding="utf-8")
    result = runner.invoke(app, ["generate", "run", str(prompts), "--model", str(tiny_model), "--device", "cuda:1",
                                 "--out", str(tmp_path / "c.jsonl"), "--quiet"], terminal_width=400)
    assert result.exit_code == 2
    assert "'cuda:1'" in _error_line(result.output)


@pytest.fixture
def saved_model(tmp_path: Path) -> Path:
    data = tmp_path / "pairs.jsonl"
    rows = [{"prompt": f"question {i}", "chosen": f"a helpful answer number {i}", "rejected": f"go away {i}"}
            for i in range(12)]
    data.write_text("".join(f"{json.dumps(r)}\n" for r in rows), encoding="utf-8")
    result = runner.invoke(app, ["train", str(data), "--head", "bt-linear", "--encoder", "hashing:32",
                                 "--out", str(tmp_path / "model"), "--quiet"])
    assert result.exit_code == 0, result.output
    return tmp_path / "model"


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only behaviour")
def test_score_and_evaluate_take_a_device(saved_model: Path, tmp_path: Path) -> None:
    scores = {}
    for device in ("cpu", "auto"):
        result = runner.invoke(app, ["score", "--model", str(saved_model), "--prompt", "question 1", "--response",
                                     "a helpful answer", "--device", device])
        assert result.exit_code == 0, result.output
        scores[device] = result.output
    assert scores["cpu"] == scores["auto"]
    result = runner.invoke(app, ["score", "--model", str(saved_model), "--prompt", "q", "--response", "r",
                                 "--device", "cuda:1"], terminal_width=400)
    assert result.exit_code == 2 and "'cuda:1'" in _error_line(result.output)
    data = saved_model.parent / "pairs.jsonl"
    result = runner.invoke(app, ["evaluate", str(data), "--model", str(saved_model), "--device", "cuda",
                                 "--quiet"], terminal_width=400)
    assert result.exit_code == 2 and "'cuda'" in _error_line(result.output)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (none here): the head scored on it")
def test_score_on_a_gpu_moves_the_head_and_agrees_with_the_cpu(saved_model: Path) -> None:
    from rewardlab.rewards.model import RewardModel
    from rewardlab.rewards.torch_training import module_device

    assert module_device(RewardModel.load(saved_model).move_head("cuda").head.net_).type == "cuda"  # type: ignore[attr-defined]
    rewards = {}
    for device in ("cpu", "cuda"):
        result = runner.invoke(app, ["score", "--model", str(saved_model), "--prompt", "question 1", "--response",
                                     "a helpful answer", "--device", device])
        assert result.exit_code == 0, result.output
        rewards[device] = float(json.loads(result.output.strip().splitlines()[-1])["score"])
    assert abs(rewards["cpu"] - rewards["cuda"]) < 1e-4
